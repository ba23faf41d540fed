"""Generation speed of the local LLM backend: load time and tokens/s.

    python bench/llm_speed.py [--gguf FILE] [--runs 3] [--max-tokens 256]

Prints one line per run and the median; a benchmark, not a test (these machines are shared and noisy).
"""
import argparse
import statistics

from helpers import stories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default=None, help="a GGUF file (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()

    backend = stories.LocalLlama(args.gguf)
    print(f"model {backend.model}: loaded in {backend.load_seconds:.2f} s")
    messages = stories.build_messages(stories.EXAMPLE_SPEC, "persona")
    speeds = []
    for i in range(args.runs):
        # temperature 0 and no stop before max_tokens would be ideal; the model may still end early
        gen = backend.generate(messages, temperature=0.7, max_tokens=args.max_tokens, seed=i)
        speeds.append(gen.tokens_per_s)
        print(f"run {i}: {gen.completion_tokens} tokens in {gen.seconds:.2f} s = {gen.tokens_per_s:.1f} tokens/s "
              f"(prompt {gen.prompt_tokens} tokens)")
    print(f"median: {statistics.median(speeds):.1f} tokens/s over {args.runs} runs (target: >= 80 on 2 cores)")


if __name__ == "__main__":
    main()
