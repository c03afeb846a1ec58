"""Validates SARIF logs against the SARIF 2.1.0 JSON schema (draft-04).

Usage: validate.py SCHEMA LOG...; prints each error as `LOG: PATH: MESSAGE`
and exits 1 when any log is invalid. Needs the jsonschema package (Debian:
python3-jsonschema).
"""

import json
import sys

from jsonschema import Draft4Validator, FormatChecker

schema = json.load(open(sys.argv[1]))
Draft4Validator.check_schema(schema)
validator = Draft4Validator(schema, format_checker=FormatChecker())
status = 0
for path in sys.argv[2:]:
    errors = sorted(
        validator.iter_errors(json.load(open(path))),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    for e in errors:
        where = "/".join(map(str, e.absolute_path)) or "<root>"
        print(f"{path}: {where}: {e.message}")
    status |= bool(errors)
sys.exit(status)
