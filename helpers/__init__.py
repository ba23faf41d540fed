"""helpers: the package the workbook's notebooks import.

Modules, one idea each: ``config`` (paths and run profiles), ``data`` (MRPC), ``models``
(which BERT, and loading it), ``ptuning`` (Q1 training), ``curves`` (live training curves),
``notebooks`` (executing and checking the notebooks).
"""
__version__ = "0.1.0"
