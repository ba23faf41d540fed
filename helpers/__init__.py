"""helpers: the package the workbook's notebooks import.

Modules, one idea each: ``config`` (paths and run profiles), ``data`` (MRPC), ``models``
(which BERT, and loading it), ``ptuning`` (Q1 training, and every training run), ``curves``
(live training curves), ``adapter_dims`` (Q2: bottleneck adapters and their hidden size),
``stories`` (Q3: prompts, LLM backends, story checks, diversity), ``bench`` (benchmarks),
``notebooks`` (executing and checking the notebooks). ``python -m helpers --help`` lists the commands.
"""
__version__ = "0.1.0"
