"""helpers: the package the workbook's notebooks import.

Modules by concern, one idea each. Shared machinery: ``config`` (paths and run profiles), ``data`` (MRPC, and
tokenizing its pairs), ``models`` (which BERT, and loading it), ``settings`` (typed run settings, one field each),
``methods`` (one spec per fine-tuning method: defaults, config, build, save, load, search space), ``training`` (one
training run: Trainer, optimizer, sampler, ``training_args``), ``callbacks`` (best weights, stop on a signal,
checkpoint extras, the per-epoch log line), ``checkpoints`` (checkpoints that are whole or absent; resuming from
them), ``sweeps`` (methods over seeds), ``ray_engine`` (runs as Ray tasks, on one machine or a cluster), ``search``
(recipe searches with Optuna), ``frontier`` (every method's accuracy against its trainable parameters),
``inference`` (loading a trained run and predicting), ``runinfo`` (environment, git commit, precision, folder
locks), ``results`` (run results, their JSON, tables and sweeps), ``stats`` (intervals and paired tests), ``curves``
(live training curves), ``bottleneck`` (building bottleneck adapters), ``llm`` (LLM backends), ``notebooks``
(executing and checking the notebooks), ``llama_build`` (a portable llama-cpp-python build and its check),
``doctor`` (what a TA asks for when something breaks). One module per question: ``ptuning`` (Q1: the peft config and
the anatomy of v1 and v2), ``adapter_dims`` (Q2: the adapter's hidden size, explained), ``stories`` (Q3, a package:
spec and prompts, text, checking, diversity, records, writing levers, the comparison study, the form). ``bench``
benchmarks them with the tools in ``timing``. No question's module imports another's.
``python -m helpers --help`` lists the commands.
"""
__version__ = "0.1.0"
