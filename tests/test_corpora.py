"""Reading corpora: text files (plain, gzip, bad bytes), the IMDb archive (order, HTML, corruption, download)."""

import bz2
import gzip
import hashlib
import io
import lzma
import tarfile

import numpy as np
import pytest

from w2v.data import imdb
from w2v.data.text import read_lines
from w2v.data.tokenize import TokenizerSettings, tokenize
from w2v.errors import ConfigError


def test_text_corpus_plain_gzip_and_invalid_bytes(tmp_path):
    raw = b"first doc \xff\xfe here\n\n   \nsecond doc\n"
    (tmp_path / "c.txt").write_bytes(raw)
    with gzip.open(tmp_path / "c.txt.gz", "wb") as out:
        out.write(raw)
    for name in ("c.txt", "c.txt.gz"):
        docs = read_lines(tmp_path / name)
        assert len(docs) == 2 and "\ufffd" in docs[0] and docs[1].startswith("second")
    assert len(read_lines(tmp_path / "c.txt", max_docs=1)) == 1


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_corpora_are_known_by_their_bytes_not_their_name(tmp_path, compress):
    raw = "first doc here\nsecond doc\n".encode()
    (tmp_path / "corpus.txt").write_bytes(compress(raw))
    assert read_lines(tmp_path / "corpus.txt") == ["first doc here\n", "second doc\n"]


def test_a_byte_order_mark_and_a_stray_carriage_return_change_no_word(tmp_path):
    (tmp_path / "c.txt").write_bytes("\ufeffthe cat\rsat\r\nthe dog\n".encode())
    assert read_lines(tmp_path / "c.txt") == ["the cat\rsat\r\n", "the dog\n"]  # two documents, no BOM


def test_lines_with_bytes_that_are_not_utf8_are_counted_in_a_warning(tmp_path, caplog):
    (tmp_path / "latin1.txt").write_bytes("café crème\nplain line\nnaïve\n".encode("latin-1"))
    with caplog.at_level("WARNING", logger="w2v.data.text"):
        assert len(read_lines(tmp_path / "latin1.txt")) == 3
    assert "2 of the 3 lines read from" in caplog.text and "iconv -f latin1 -t utf-8" in caplog.text


@pytest.mark.parametrize("setup, match", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text(""), "is empty"),
    (lambda p: p.write_text("\n \n"), "no non-blank line"),
    (lambda p: p.mkdir(), "is not a file"),
    (lambda p: p.write_bytes("the cat\n".encode("utf-16")), r"is UTF-16 text; convert it to UTF-8 \(iconv"),
    (lambda p: p.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(20)), r"is compressed with zstd; decompress it"),
])
def test_bad_text_corpus(tmp_path, setup, match):
    path = tmp_path / "corpus.txt"
    setup(path)
    with pytest.raises(ConfigError, match=match):
        read_lines(path)


def test_a_document_longer_than_spacy_takes_is_read_whole():
    """A corpus on one line (text8): tokenized in pieces cut at spaces, kept as one document."""
    text = "The cat sat on the mat, and the dog sat on the log. " * 40
    whole = tokenize([text, "a short one"], TokenizerSettings(), n_process=1)
    cut = tokenize([text, "a short one"], TokenizerSettings(max_doc_chars=50), n_process=1)
    assert cut.offsets.tolist() == whole.offsets.tolist() == [0, 520, 523]
    assert cut.words == whole.words and cut.ids.tolist() == whole.ids.tolist()


def test_word_counts_over_many_chunks_equal_a_plain_count():
    """Chunks of 500 documents merged into one vocabulary that grows as new words come."""
    from collections import Counter

    rng = np.random.default_rng(0)
    docs = [" ".join(f"w{k}" for k in rng.zipf(1.3, rng.integers(1, 30)) % 5000) for _ in range(2300)]
    corpus = tokenize(docs, TokenizerSettings(alpha_only=False), n_process=1)
    assert dict(zip(corpus.words, corpus.counts.tolist())) == Counter(w for d in docs for w in d.split())
    assert corpus.counts.tolist() == np.bincount(corpus.ids, minlength=len(corpus.words)).tolist()


def test_tokenizer_keeps_alphabetic_lowercases_and_lemmatizes():
    docs = ["The cats were running, 42 times!", "Dogs ran."]
    plain = tokenize(docs, TokenizerSettings(), n_process=1)
    assert [plain.words[i] for i in plain.ids] == ["the", "cats", "were", "running", "times", "dogs", "ran"]
    assert plain.offsets.tolist() == [0, 5, 7]
    lemmas = tokenize(docs, TokenizerSettings(lemmatize=True), n_process=1)
    assert [lemmas.words[i] for i in lemmas.ids] == ["the", "cat", "be", "run", "time", "dog", "run"]
    cased = tokenize(docs, TokenizerSettings(lowercase=False, alpha_only=False), n_process=1)
    assert [cased.words[i] for i in cased.ids][:4] == ["The", "cats", "were", "running"] and "42" in cased.words


def test_tokenizer_on_two_processes_matches_one(tmp_path):
    docs = [f"review number {i} says the movie was {'good' if i % 2 else 'bad'}" for i in range(2500)]
    one = tokenize(docs, TokenizerSettings(), n_process=1)
    two = tokenize(docs, TokenizerSettings(), n_process=2)
    assert [one.words[i] for i in one.ids] == [two.words[i] for i in two.ids]
    assert one.offsets.tolist() == two.offsets.tolist()


def make_archive(path, reviews):
    """A small archive in the aclImdb layout: {member name: text}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in reviews.items():
            data = text.encode()
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


REVIEWS = {
    "train/unsup/3_0.txt": "unsup three",
    "test/pos/0_9.txt": "test pos zero",
    "train/pos/10_8.txt": "train pos ten",
    "train/pos/2_7.txt": "train pos two<br /><br />second line",
    "train/neg/1_2.txt": "train neg one",
    "README": "not a review",
}


def test_reviews_read_in_documented_order_without_html(tmp_path):
    archive = make_archive(tmp_path / imdb.ARCHIVE_NAME, REVIEWS)
    reviews = imdb.read_reviews(archive)
    assert [r.split()[:3] for r in reviews] == [["train", "neg", "one"], ["train", "pos", "two"],
                                                ["train", "pos", "ten"], ["test", "pos", "zero"], ["unsup", "three"]]
    assert "<br" not in reviews[1] and "second line" in reviews[1]
    assert len(imdb.read_reviews(archive, max_docs=2)) == 2


def test_the_first_reviews_are_read_without_the_rest_of_the_archive(tmp_path):
    first = {f"train/neg/{i}_1.txt": f"neg {i}" for i in (2, 0, 1)}
    archive = make_archive(tmp_path / imdb.ARCHIVE_NAME, {"train/pos/0_9.txt": "pos 0", **first, "train/neg/3_1.txt": "neg 3"})
    assert imdb.read_reviews(archive, max_docs=3) == ["neg 0", "neg 1", "neg 2"]
    assert imdb.read_reviews(archive, max_docs=5) == ["neg 0", "neg 1", "neg 2", "neg 3", "pos 0"]
    # Everything after train/neg's ids 0..2 is damaged: the first three reviews are still read whole.
    data = archive.read_bytes()
    cut = make_archive(tmp_path / "head.tar.gz", {"train/pos/0_9.txt": "pos 0", **first}).stat().st_size
    archive.write_bytes(data[:cut])
    assert imdb.read_reviews(archive, max_docs=3) == ["neg 0", "neg 1", "neg 2"]


def test_truncated_archive_is_moved_aside(tmp_path):
    archive = make_archive(tmp_path / imdb.ARCHIVE_NAME, {f"train/neg/{i}_1.txt": "word " * 5000 for i in range(20)})
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="truncated or corrupt.*moved aside"):
        imdb.read_reviews(archive)
    assert not archive.exists() and (tmp_path / (imdb.ARCHIVE_NAME + ".corrupt")).exists()


def test_an_unpacked_archive_reads_as_the_gzipped_one(tmp_path):
    """Some browsers un-gzip the download: aclImdb_v1.tar reads the same."""
    gzipped = make_archive(tmp_path / imdb.ARCHIVE_NAME, REVIEWS)
    plain = tmp_path / "aclImdb_v1.tar"
    plain.write_bytes(gzip.decompress(gzipped.read_bytes()))
    assert imdb.read_reviews(plain) == imdb.read_reviews(gzipped)


def test_a_damaged_archive_the_user_named_stays_where_it_is(tmp_path):
    archive = make_archive(tmp_path / "mine.tar.gz", {f"train/neg/{i}_1.txt": "word " * 5000 for i in range(20)})
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="mine.tar.gz is truncated or corrupt .*; replace it with a good copy") as err:
        imdb.read_reviews(archive, move_aside=False)
    assert archive.exists() and not list(tmp_path.glob("*.corrupt")) and "\n" not in str(err.value)


def test_an_unreadable_archive_is_not_called_corrupt(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / imdb.ARCHIVE_NAME, REVIEWS)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(archive))

    monkeypatch.setattr(imdb.tarfile, "open", refuse)  # as a file without read permission (root reads any)
    with pytest.raises(ConfigError, match="cannot read the IMDb archive .* make it readable"):
        imdb.read_reviews(archive)
    assert archive.exists()


def test_missing_archive_without_download_names_url_and_both_ways(tmp_path):
    from w2v.api import build_datamodule
    from w2v.data import ImdbDataModule

    dm = build_datamodule(f"paths.data_dir={tmp_path}", f"data.cache_dir={tmp_path / 'cache'}", "data.download=false")
    assert isinstance(dm, ImdbDataModule)
    with pytest.raises(ConfigError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert imdb.IMDB_URL in message and "W2V_DATA_DIR" in message and "data.archive=PATH" in message
    assert "\n" not in message


def test_failed_download_is_a_one_line_error_and_leaves_nothing(tmp_path):
    with pytest.raises(ConfigError, match="could not download.*data.archive=PATH"):
        imdb.download_archive((tmp_path / "nowhere.tar.gz").as_uri(), tmp_path / "out" / imdb.ARCHIVE_NAME, None)
    assert list((tmp_path / "out").iterdir()) == []


def test_download_verifies_checksum_then_renames(tmp_path):
    source = make_archive(tmp_path / "source.tar.gz", REVIEWS)
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    dest = tmp_path / "data" / imdb.ARCHIVE_NAME
    with pytest.raises(ConfigError, match="expected 0+; the download was discarded"):
        imdb.download_archive(source.as_uri(), dest, "0" * 32)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    assert imdb.download_archive(source.as_uri(), dest, md5) == dest
    assert dest.read_bytes() == source.read_bytes()
