"""`sal_tf.serve.limits`: the JSON shape bounds, and the bodies that pass them without the scan.

Over HTTP the bounds are checked in tests/test_serve_api.py (a 10,000-deep body, 65,537 values);
here, that the unscanned path never lets through what the scan refuses.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sal_tf.serve import limits
from sal_tf.serve.failures import BadInput


def scan_refuses(body):
    try:
        limits.scan_json_shape(body)
    except BadInput:
        return True
    return False


def test_a_search_body_passes_without_the_scan():
    embedding = [round(0.01 * i - 0.6, 7) for i in range(128)]
    body = {"embedding": embedding, "k": 10, "exclude_camera": 2, "time_range": [1.7e9, 1.7e9 + 43200.0]}
    assert limits.within_bounds_unscanned(json.dumps(body).encode())
    assert limits.within_bounds_unscanned(json.dumps({"image_b64": "/9j/4AAQSkZJRg==" * 400, "k": 5}).encode())


@pytest.mark.parametrize(
    "body",
    [
        b"[" * (limits.MAX_JSON_DEPTH + 1) + b"]" * (limits.MAX_JSON_DEPTH + 1),
        b'{"embedding": [' + b"0," * limits.MAX_JSON_VALUES + b"0]}",
        b'{"items": [' + b"{}," * limits.MAX_JSON_VALUES + b"{}]}",
    ],
    ids=["one level too deep", "one value too many", "many objects"],
)
def test_bodies_past_a_bound_are_scanned_and_refused(body):
    assert not limits.within_bounds_unscanned(body)
    with pytest.raises(BadInput, match="body"):
        limits.check_json_shape(body)


def test_brackets_inside_strings_are_scanned_not_refused():
    body = json.dumps({"id": "[[[[[[[[[[[[", "image_b64": "x"}).encode()
    assert not limits.within_bounds_unscanned(body) and not scan_refuses(body)
    limits.check_json_shape(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{},"\\ab', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(alphabet="[{,k", max_size=3), inner, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(1, 4), st.integers(2, 30))
def test_the_unscanned_path_never_passes_what_the_scan_refuses(value, depth, values):
    body = json.dumps(value).encode()
    bounds = limits.MAX_JSON_DEPTH, limits.MAX_JSON_VALUES
    limits.MAX_JSON_DEPTH, limits.MAX_JSON_VALUES = depth, values  # small bounds, so that bodies reach both
    try:
        if limits.within_bounds_unscanned(body):
            assert not scan_refuses(body)
    finally:
        limits.MAX_JSON_DEPTH, limits.MAX_JSON_VALUES = bounds
