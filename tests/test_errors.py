from sagan_tf import errors


def test_first_line_keeps_the_first_line_cut_to_the_limit():
    error = ValueError("  Layer count mismatch: 189 layers, 188 saved.\n" + "layer 1\n" * 100)
    assert errors.first_line(error) == "Layer count mismatch: 189 layers, 188 saved."
    assert errors.first_line(ValueError("x" * 300)) == "x" * 200
    assert errors.first_line(ValueError("x" * 300), limit=None) == "x" * 300


def test_an_empty_message_names_the_exception():
    assert errors.first_line(OSError()) == "OSError"
