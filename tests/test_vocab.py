"""Vocabulary building: frequency order, size and min_count limits, special tokens, OOV policies, errors."""

import numpy as np
import pytest

from w2v.data.corpus import Corpus
from w2v.data.tokenize import TokenizedCorpus
from w2v.data.vocab import Vocabulary
from w2v.errors import ConfigError

WORDS = ["b", "a", "c", "d"]
IDS = np.array([0, 1, 1, 2, 1, 0, 3, 2, 1], dtype=np.int32)
TOKENS = TokenizedCorpus(words=WORDS, ids=IDS, offsets=np.array([0, 4, 9]), counts=np.bincount(IDS))
# counts: a=4, b=2, c=2, d=1


def test_most_frequent_first_ties_by_first_appearance_and_counts_kept():
    vocab = Vocabulary.build(TOKENS.counts, WORDS, specials=["<PAD>", "<UNK>"])
    assert vocab.words == ["<PAD>", "<UNK>", "a", "b", "c", "d"]
    assert vocab.counts.tolist() == [0, 0, 4, 2, 2, 1]


def test_max_size_counts_specials_and_unk_collects_the_rest():
    vocab = Vocabulary.build(TOKENS.counts, WORDS, max_size=4, specials=["<PAD>", "<UNK>"], oov="unk")
    assert vocab.words == ["<PAD>", "<UNK>", "a", "b"]
    assert vocab.counts.tolist() == [0, 3, 4, 2]
    ids, offsets = Corpus(TOKENS, vocab).all_ids()
    assert ids.tolist() == [3, 2, 2, 1, 2, 3, 1, 1, 2]
    # <UNK>'s 3 tokens are not covered by the vocabulary's words
    assert vocab.describe(9) == ("vocabulary: 2 words + 2 special tokens; they cover 66.67% of 9 tokens; "
                                 "3 tokens map to <UNK>")


def test_drop_policy_removes_oov_tokens_and_keeps_documents_apart():
    vocab = Vocabulary.build(TOKENS.counts, WORDS, min_count=2, specials=[], oov="drop")
    assert vocab.words == ["a", "b", "c"]
    for block_tokens in (100, 3):  # one block, or blocks cut inside documents
        corpus = Corpus(TOKENS, vocab, block_tokens=block_tokens)
        assert len(corpus) == 8
        ids, offsets = corpus.all_ids()
        assert ids.tolist() == [1, 0, 0, 2, 0, 1, 2, 0]
        assert offsets.tolist() == ([0, 4, 8] if block_tokens == 100 else [0, 3, 4, 6, 8])  # cuts after 3 and 6
    assert Corpus(TOKENS, vocab, block_tokens=3).block(2)[0].tolist() == [2, 0]  # tokens 6-8 are d, c, a: d is dropped


def test_vocab_tsv_round_trip(tmp_path):
    vocab = Vocabulary.build(TOKENS.counts, WORDS, specials=["<UNK>"])
    vocab.save_tsv(tmp_path / "vocab.tsv")
    assert (tmp_path / "vocab.tsv").read_text().splitlines()[:2] == ["<UNK>\t0", "a\t4"]
    loaded = Vocabulary.load_tsv(tmp_path / "vocab.tsv")
    assert loaded.words == vocab.words and loaded.counts.tolist() == vocab.counts.tolist()


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_size=2, specials=["<PAD>", "<UNK>"]), "no room for words"),
    (dict(oov="unk", specials=["<PAD>"]), "add it or set data.vocab.oov=drop"),
    (dict(oov="ignore"), "data.vocab.oov"),
    (dict(min_count=0), "min_count"),
    (dict(specials=["<UNK>", "<UNK>"]), "twice"),
])
def test_bad_vocabulary_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Vocabulary.build(TOKENS.counts, WORDS, **kwargs)


def test_no_word_reaching_min_count_is_a_clear_error():
    vocab = Vocabulary.build(TOKENS.counts, WORDS, min_count=10, specials=[], oov="drop")
    with pytest.raises(ConfigError, match="lower data.vocab.min_count"):
        Corpus(TOKENS, vocab)
