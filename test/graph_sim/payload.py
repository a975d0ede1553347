"""Validation of customer-file payloads, and the canonical identity of a member.

This is the simulator's hot path: a request carries up to 10,000 rows x 8 keys. Columns
are checked with C-level operations (sets of cell types and lengths, bytes.translate over
the joined column); per-cell Python runs only for a column that holds a bad cell.

A member is the set of its non-empty, valid identity (key, value) pairs. It is encoded
canonically (every identity key in a fixed order, "" where absent) so the same person gets
the same 16-byte digest whatever the schema order or extra empty keys. The hashed keys come
first (hex only, never a separator), then MADID (escaped if it holds a separator or
backslash), then EXTERN_ID last, so the encoding is unambiguous whatever EXTERN_ID holds.
"""

import hashlib
import json
import math
import re
from dataclasses import dataclass

from graph_errors import (invalid_parameter, missing_parameter, too_many_rows,
                          unsupported_by_simulator)

HASHED_KEYS = frozenset(("EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI",
                         "CT", "ST", "ZIP", "COUNTRY"))
UNHASHED_IDENTITY_KEYS = frozenset(("EXTERN_ID", "MADID"))
IDENTITY_KEYS = HASHED_KEYS | UNHASHED_IDENTITY_KEYS
ATTRIBUTE_KEYS = frozenset(("LOOKALIKE_VALUE", "DATA_PROCESSING_OPTIONS",
                            "DATA_PROCESSING_OPTIONS_COUNTRY", "DATA_PROCESSING_OPTIONS_STATE"))
SCHEMA_KEYS = IDENTITY_KEYS | ATTRIBUTE_KEYS
PAYLOAD_FIELDS = frozenset(("schema", "data", "is_raw", "data_source"))

CANONICAL_KEYS = tuple(sorted(HASHED_KEYS)) + ("MADID", "EXTERN_ID")
FIELD_SEPARATOR = "\x1e"
NO_IDENTITY = FIELD_SEPARATOR * (len(CANONICAL_KEYS) - 1)  # every identity key empty

MAX_ROWS_PER_REQUEST = 10_000
MAX_INVALID_SAMPLES = 100
EMPTY_STRING_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

_HEX_BYTES = b"0123456789abcdef"
_HASH_LENGTHS = frozenset((0, 64))
_ONLY_STR = frozenset((str,))
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ANY_CASE_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_EMPTY_VALUES = ("", [])
_ESCAPED = re.compile(r"\\(\\|s)")


@dataclass
class CheckedPayload:
    """A valid payload, reduced to what membership and the response need."""
    schema: tuple
    num_rows: int
    num_invalid_entries: int
    invalid_entry_samples: dict
    empty_hash_cells: int
    encoded: list        # canonical identity per row (NO_IDENTITY when it has none)
    digests: list        # 16-byte digest per row, None for NO_IDENTITY
    extern_ids: list     # valid EXTERN_ID per row ("" if none), or None without that column

    @property
    def num_members(self):
        return self.num_rows - self.digests.count(None)


def decode_json_param(name, value):
    """Graph takes object parameters as JSON text in forms and query strings."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise invalid_parameter(f"The parameter {name} is not valid JSON") from None


def check_payload(payload, max_rows=MAX_ROWS_PER_REQUEST):
    """Validate a payload as Meta does; raise GraphError for request errors, count entry errors."""
    if payload is None:
        raise missing_parameter("payload")
    payload = decode_json_param("payload", payload)
    if not isinstance(payload, dict):
        raise invalid_parameter("The parameter payload must be a JSON object")
    unknown = set(payload) - PAYLOAD_FIELDS
    if unknown:
        raise invalid_parameter(f"payload has unknown fields {sorted(unknown)}")
    if "is_raw" in payload and not isinstance(payload["is_raw"], bool):
        raise invalid_parameter("payload[is_raw] must be a boolean")
    schema = _check_schema(payload.get("schema"))
    data = _check_data(payload.get("data"), len(schema), max_rows)
    return _check_cells(schema, data)


def _check_schema(schema):
    if schema is None:
        raise missing_parameter("payload[schema]")
    if isinstance(schema, str):
        raise unsupported_by_simulator("A single-key schema string")
    if not isinstance(schema, list) or not schema:
        raise invalid_parameter("payload[schema] must be a non-empty array of keys")
    seen = set()
    for position, key in enumerate(schema):
        if not isinstance(key, str) or key not in SCHEMA_KEYS:
            raise invalid_parameter(f"payload[schema][{position}] is not a valid key: {key!r}")
        if key in seen:
            raise invalid_parameter(f"payload[schema] repeats the key {key}")
        seen.add(key)
    return tuple(schema)


def _check_data(data, width, max_rows):
    if data is None:
        raise missing_parameter("payload[data]")
    if not isinstance(data, list):
        raise invalid_parameter("payload[data] must be an array of rows")
    if not data:
        raise invalid_parameter("payload[data] is empty")
    if max_rows is not None and len(data) > max_rows:
        raise too_many_rows(len(data), max_rows)
    if set(map(type, data)) != {list}:
        bad = next(i for i, row in enumerate(data) if type(row) is not list)
        raise invalid_parameter(f"payload[data][{bad}] must be an array")
    if set(map(len, data)) != {width}:
        bad = next(i for i, row in enumerate(data) if len(row) != width)
        raise invalid_parameter(f"payload[data][{bad}] has {len(data[bad])} values but the "
                                f"schema has {width} keys")
    return data


def _check_cells(schema, data):
    columns = list(zip(*data))
    bad_rows = {}   # column index -> set of row indexes whose cell is invalid
    samples = {}
    invalid_count = 0
    empty_hash_cells = 0
    for index, key in enumerate(schema):
        column = columns[index]
        if _column_is_clean(key, column):
            continue
        cell_error = _CELL_CHECKS[key]
        rows = set()
        for row_index, value in enumerate(column):
            reason = cell_error(value)
            if reason is None:
                continue
            rows.add(row_index)
            invalid_count += 1
            if key in HASHED_KEYS and value == EMPTY_STRING_SHA256:
                empty_hash_cells += 1
            if len(samples) < MAX_INVALID_SAMPLES:
                samples[value if isinstance(value, str) else json.dumps(value)] = f"{key}: {reason}"
        if rows:
            bad_rows[index] = rows

    identity_columns = _identity_columns(schema, columns, bad_rows)
    encoded = _encode_members(identity_columns, len(data))
    if NO_IDENTITY in encoded:
        for row_index, member in enumerate(encoded):
            if member == NO_IDENTITY and all(cell in _EMPTY_VALUES for cell in data[row_index]):
                invalid_count += 1
                if len(samples) < MAX_INVALID_SAMPLES:
                    samples[json.dumps(data[row_index])] = "row: every value is empty"

    blake2b = hashlib.blake2b
    digests = [blake2b(member.encode(), digest_size=16).digest() if member != NO_IDENTITY
               else None for member in encoded]
    return CheckedPayload(schema, len(data), invalid_count, samples, empty_hash_cells,
                          encoded, digests, identity_columns.get("EXTERN_ID"))


def _column_is_clean(key, column):
    """Fast path: True when no cell of the column can be an entry error."""
    if key in ATTRIBUTE_KEYS or set(map(type, column)) != _ONLY_STR:
        return False
    if key in HASHED_KEYS:
        if not set(map(len, column)) <= _HASH_LENGTHS or EMPTY_STRING_SHA256 in column:
            return False
        joined = "".join(column)
        return joined.isascii() and not joined.encode("ascii").translate(None, _HEX_BYTES)
    if key == "MADID":
        joined = "".join(column)
        return 64 not in set(map(len, column)) and joined == joined.lower()
    return True  # EXTERN_ID: any string


def _identity_columns(schema, columns, bad_rows):
    """{key: column} for the identity keys of the schema, invalid cells blanked."""
    identity = {}
    for index, key in enumerate(schema):
        if key not in IDENTITY_KEYS:
            continue
        column = columns[index]
        blanked = bad_rows.get(index)
        if blanked:
            column = ["" if i in blanked else value for i, value in enumerate(column)]
        if key == "MADID":
            joined = "".join(column)
            if "\\" in joined or FIELD_SEPARATOR in joined:
                column = [_escape(value) for value in column]
        identity[key] = column
    return identity


def _encode_members(identity_columns, num_rows):
    """The canonical member string of each row: every identity key in CANONICAL_KEYS order,
    "" for keys the row lacks, so schema order and extra empty keys do not matter."""
    if not identity_columns:
        return [NO_IDENTITY] * num_rows
    template = FIELD_SEPARATOR.join("%s" if key in identity_columns else ""
                                    for key in CANONICAL_KEYS)
    present = [identity_columns[key] for key in CANONICAL_KEYS if key in identity_columns]
    return [template % values for values in zip(*present)]


def decode_member(encoded):
    """The {key: value} pairs of a canonical member string."""
    values = encoded.split(FIELD_SEPARATOR, len(CANONICAL_KEYS) - 1)
    pairs = {key: value for key, value in zip(CANONICAL_KEYS, values) if value}
    if "\\" in pairs.get("MADID", ""):
        pairs["MADID"] = _unescape(pairs["MADID"])
    return pairs


def is_extern_id_only(encoded):
    """True when EXTERN_ID is the member's only identity (removal by EXTERN_ID)."""
    return encoded.startswith(NO_IDENTITY) and encoded != NO_IDENTITY


def _escape(value):
    return value.replace("\\", "\\\\").replace(FIELD_SEPARATOR, "\\s")


def _unescape(value):
    return _ESCAPED.sub(lambda match: "\\" if match.group(1) == "\\" else FIELD_SEPARATOR, value)


# --- per-cell checks for the slow path: None when valid, else the reason -------------

def _hashed_cell_error(value):
    if type(value) is not str:
        return "not a string"
    if value == "":
        return None
    if not _SHA256_HEX.fullmatch(value):
        return "not a SHA-256 digest in 64 lowercase hex characters"
    if value == EMPTY_STRING_SHA256:
        return "SHA-256 of the empty string"
    return None


def _madid_cell_error(value):
    if type(value) is not str:
        return "not a string"
    if _ANY_CASE_HEX64.fullmatch(value):
        return "looks hashed; MADID is sent unhashed"
    if value != value.lower():
        return "has capital letters; MADID is sent lowercased"
    return None


def _extern_id_cell_error(value):
    return None if type(value) is str else "not a string"


def _lookalike_value_cell_error(value):
    if value == "":
        return None
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        return "not a non-negative finite number"
    return None


def _data_processing_options_cell_error(value):
    if type(value) is not list or any(option != "LDU" for option in value):
        return 'not [] or ["LDU"]'
    return None


def _data_processing_region_cell_error(value):
    if value == "" or (type(value) is int and value >= 0):
        return None
    return "not a non-negative integer"


_CELL_CHECKS = {key: _hashed_cell_error for key in HASHED_KEYS}
_CELL_CHECKS.update({
    "MADID": _madid_cell_error,
    "EXTERN_ID": _extern_id_cell_error,
    "LOOKALIKE_VALUE": _lookalike_value_cell_error,
    "DATA_PROCESSING_OPTIONS": _data_processing_options_cell_error,
    "DATA_PROCESSING_OPTIONS_COUNTRY": _data_processing_region_cell_error,
    "DATA_PROCESSING_OPTIONS_STATE": _data_processing_region_cell_error,
})
