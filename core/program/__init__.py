"""Loading and checking a program directory (CONTRACT.md, "Program directory").

Entry points: ``loader.load_program``, ``check.check_program``, ``schema.json_schemas``. Core
reads its own ``program.yaml``; every other file kind (``coupons.yaml``, ``campaigns/``,
``templates/``) and its cross-file checks are registered by the package that owns it
(:mod:`core.program.kinds`), so nothing here imports a feature package. This module imports
nothing, so the packages' definition modules can import ``core.program.program_file``.

Exceptions (``core.program.loader``)::

    ProgramError                  base of this package
    ├── ProgramNotFound           the program directory does not exist
    └── ProgramInvalid            files have errors; ``issues`` lists each, positioned
"""
