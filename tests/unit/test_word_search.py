"""Word-start search (L5, `q`): how a client's name is cut into the texts a search compares
the query with, and which bills a query finds (domain/listing.py), as properties over any
names (Hypothesis) and as the cases a billing clerk types."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billbridge.domain.bills import Matter
from billbridge.domain.listing import (
    MAX_NAME_WORDS,
    client_search_texts,
    matches,
    normalize_text,
    parse_query,
    word_starts,
)
from tests.fakes import stored_bill


def bill_of(client: str, number: str = "INV-1", matter: str | None = None):
    stored = stored_bill(1)
    bill = replace(stored.bill, client=replace(stored.bill.client, name=client), number=number)
    if matter is not None:
        bill = replace(bill, matter=Matter(id=1, display_number=matter, description=None))
    return replace(stored, bill=bill)


def finds(client: str, text: str) -> bool:
    query = parse_query(text)
    assert query is not None
    return matches(bill_of(client, number=""), query)


@pytest.mark.parametrize(
    ("client", "text"),
    [
        ("John Smith", "smith"),
        ("John Smith", "Smith"),
        ("John Smith", "sm"),
        ("John Smith", "john sm"),
        ("Acme Ltd", "ltd"),
        ("Acme Ltd", "acme"),
        ("Acme Holdings Ltd", "holdings l"),
        ("Émile Zola", "emile"),
        ("Zoë Émile-Brontë", "bronte"),
        ("O'Brien & Sons, LLC", "brien"),
        ("O'Brien & Sons, LLC", "sons, llc"),
        ("O'Brien & Sons, LLC", "llc"),
        ("Zed & Co", "co"),
        ("(Acme) Ltd", "acme"),
        ("Smith12 Partners 40 LLC", "40 llc"),
    ],
)
def test_a_query_finds_a_client_from_the_start_of_any_word(client: str, text: str) -> None:
    assert finds(client, text)


@pytest.mark.parametrize(
    ("client", "text"),
    [
        ("John Smith", "mith"),  # inside a word, not its start
        ("John Smith", "smith j"),  # the query's words in another order than the name's
        ("Acme Ltd", "ltd acme"),
        ("Acme Ltd", "acme  x"),
        ("Johnson", "son"),
    ],
)
def test_a_query_does_not_find_a_client_elsewhere(client: str, text: str) -> None:
    assert not finds(client, text)


def test_the_bill_number_and_matter_still_match_from_their_start_only() -> None:
    stored = bill_of("Acme Ltd", number="INV-00042", matter="00042-Acme")
    assert matches(stored, "inv-000")
    assert matches(stored, "00042-ac")
    assert not matches(stored, "00042-ac".replace("000", "x"))
    assert not matches(stored, "acme-")  # "acme" is a word of the matter, not its start


def test_texts_of_a_name_are_the_whole_name_then_each_later_word_on() -> None:
    assert client_search_texts("Acme  Holdings Ltd") == ["acme holdings ltd", "holdings ltd", "ltd"]
    assert client_search_texts("Acme") == ["acme"]
    assert client_search_texts("") == [""]
    assert client_search_texts("(Acme) Ltd") == ["(acme) ltd", "acme) ltd", "ltd"]
    assert word_starts("o'brien & sons") == [0, 2, 10]


def test_a_name_of_many_words_is_found_by_its_first_words_only() -> None:
    words = [f"w{i}x" for i in range(MAX_NAME_WORDS + 4)]
    name = " ".join(words)
    texts = client_search_texts(name)
    assert len(texts) == MAX_NAME_WORDS
    assert finds(name, words[MAX_NAME_WORDS - 1])
    assert not finds(name, words[MAX_NAME_WORDS])


# Letters a firm's clients are named in (with accents, both cases) and digits.
WORD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéèêëàâäôöüûçñøåßÉÀÖÜÇØ0123456789",
    min_size=1,
    max_size=8,
)
SEPARATOR = st.sampled_from([" ", "  ", "-", " & ", ", ", "'", "/", " (", ") "])


@given(st.lists(WORD, min_size=1, max_size=6), st.lists(SEPARATOR, min_size=6, max_size=6))
def test_property_every_word_of_a_name_finds_it_and_each_text_is_its_tail(
    words: list[str], separators: list[str]
) -> None:
    name = words[0] + "".join(sep + word for sep, word in zip(separators, words[1:], strict=False))
    whole = normalize_text(name)
    texts = client_search_texts(name)
    assert texts[0] == whole
    assert all(whole.endswith(t) for t in texts)
    assert len(texts) == len(set(texts)) <= MAX_NAME_WORDS
    for word in words:
        query = parse_query(word)
        assert query is not None
        # Any case and accent of a word, and any start of it, finds the bill.
        assert finds(name, word.upper())
        assert finds(name, query[:1])
        assert any(t.startswith(query) for t in texts)


@given(st.text(max_size=40), st.text(min_size=1, max_size=6))
def test_property_a_match_is_a_prefix_of_the_name_read_from_a_word_start(
    name: str, text: str
) -> None:
    query = parse_query(text)
    if query is None:
        return
    whole = normalize_text(name)
    starts = [0, *[i for i in word_starts(whole)[:MAX_NAME_WORDS] if i > 0]]
    expected = any(whole[i:].startswith(query) for i in starts)
    assert matches(bill_of(name, number=""), query) == expected
