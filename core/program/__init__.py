"""Loading and checking a program directory (CONTRACT.md, "Program directory").

Entry points: ``loader.load_program``, ``check.check_program``, ``schema.json_schemas``. This
module imports nothing, so the definition modules (coupons, campaigns, notifications) can import
``core.program.program_file`` while ``loader`` imports them.

Exceptions (``core.program.loader``)::

    ProgramError                  base of this package
    ├── ProgramNotFound           the program directory does not exist
    └── ProgramInvalid            files have errors; ``issues`` lists each, positioned
"""
