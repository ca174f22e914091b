import numpy as np
import pytest

from sagan_tf.text.tokenizer import OOV, PAD, CaptionTokenizer, split_tokens

CAPTIONS = ["A red circle, at the top.", "A blue square!", "red square on blue", "A red circle."]


def test_rules_lowercase_split_punctuation_and_markers():
    assert split_tokens(["A Red, circle!"]) == [["<start>", "a", "red", ",", "circle", "!", "<end>"]]


def test_round_trip_and_padding():
    tokenizer = CaptionTokenizer.adapt(CAPTIONS, max_length=10)
    ids = tokenizer(["A red circle."]).numpy()
    assert ids.shape == (1, 10) and ids.dtype == np.int64
    assert tokenizer.decode(ids) == ["<start> a red circle . <end>"]
    assert (ids[0, 6:] == 0).all()


def test_max_length_from_95th_percentile():
    captions = ["w " * n for n in range(1, 101)]
    tokenizer = CaptionTokenizer.adapt(captions)
    lengths = [n + 2 for n in range(1, 101)]
    assert tokenizer.max_length == int(np.ceil(np.percentile(lengths, 95)))


def test_min_word_count_maps_rare_words_to_oov():
    tokenizer = CaptionTokenizer.adapt(CAPTIONS, max_length=8, min_word_count=2)
    assert "red" in tokenizer.vocabulary and "top" not in tokenizer.vocabulary
    assert tokenizer.decode(tokenizer(["top"]))[0] == f"<start> {OOV} <end>"


def test_awkward_captions_have_defined_results():
    tokenizer = CaptionTokenizer.adapt(CAPTIONS, max_length=5)
    ids = tokenizer(["", "zzz qqq", "Ünïcödé red", "red " * 20]).numpy()
    start, end, red = (tokenizer.vocabulary.index(w) + 2 for w in ("<start>", "<end>", "red"))
    np.testing.assert_array_equal(ids[0], [start, end, 0, 0, 0])
    np.testing.assert_array_equal(ids[1], [start, 1, 1, end, 0])
    np.testing.assert_array_equal(ids[2], [start, 1, red, end, 0])
    np.testing.assert_array_equal(ids[3], [start, red, red, red, red])
    assert tokenizer.count_truncated(["red " * 20, "red"]) == 1


def test_save_load_round_trip(tmp_path):
    tokenizer = CaptionTokenizer.adapt(CAPTIONS, max_length=7)
    tokenizer.save(str(tmp_path))
    lines = (tmp_path / "vocab.txt").read_text().splitlines()
    assert lines[:2] == [PAD, OOV] and len(lines) == tokenizer.vocabulary_size
    loaded = CaptionTokenizer.load(str(tmp_path))
    assert loaded.fingerprint() == tokenizer.fingerprint()
    np.testing.assert_array_equal(loaded(CAPTIONS).numpy(), tokenizer(CAPTIONS).numpy())


def test_load_from_empty_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt is missing"):
        CaptionTokenizer.load(str(tmp_path))


def test_empty_caption_list_is_refused():
    with pytest.raises(ValueError, match="empty caption list"):
        CaptionTokenizer.adapt([])


def test_hand_edited_tokenizer_files_get_errors_that_name_them(tmp_path):
    tokenizer = CaptionTokenizer.adapt(["a red circle", "a blue square"], max_length=4)
    tokenizer.save(str(tmp_path))
    settings = tmp_path / "tokenizer.json"
    for text, message in (("{}", "expected a JSON object with max_length"),
                          ('{"max_length": "x"}', "max_length must be a positive integer, got 'x'")):
        settings.write_text(text)
        with pytest.raises(ValueError, match=message):
            CaptionTokenizer.load(str(tmp_path))
    tokenizer.save(str(tmp_path))
    (tmp_path / "vocab.txt").write_bytes(b"<pad>\n[UNK]\n\xff\xfe\n")
    with pytest.raises(ValueError, match="vocab.txt is not UTF-8 text"):
        CaptionTokenizer.load(str(tmp_path))


def test_tokens_of_a_row_line_up_with_its_ids_whatever_spaces_the_tokens_hold():
    # The tokenizer splits on ASCII whitespace only: a no-break space is a token of its own.
    tokenizer = CaptionTokenizer.adapt(["a red\u00a0bird sits", "a blue bird"], max_length=12)
    ids = tokenizer.ids(["a red\u00a0bird sits"])[0]
    tokens = tokenizer.tokens_of(ids)
    assert len(tokens) == int((ids != 0).sum())  # one label per attention weight
    assert "\u00a0" in tokens and tokens[0] == "<start>" and tokens[-1] == "<end>"
