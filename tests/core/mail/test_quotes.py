"""reply_text: the new part of a reply, without quoted history or signature."""

from __future__ import annotations

import pytest

from core.mail.quotes import reply_text

CASES = {
    "gmail_en": (
        "Thanks, Tuesday works.\n\n"
        "On Mon, Nov 16, 2026 at 9:30 AM Jordan Miles <jordan@northwind.example> wrote:\n"
        "> Can we visit on Tuesday?\n",
        "Thanks, Tuesday works.",
    ),
    "gmail_en_wrapped": (
        "Sounds good.\n\nOn Mon, Nov 16, 2026 at 9:30 AM Jordan Alexander Miles-Whitfield <\n"
        "jordan.miles-whitfield@northwind-traders.example> wrote:\n\n> Prices?\n",
        "Sounds good.",
    ),
    "gmail_fr": (
        "Merci !\n\n"
        "Le lun. 16 nov. 2026 à 09:30, Camille Dubois <camille@orange.fr> a écrit :\n> Devis ?\n",
        "Merci !",
    ),
    "gmail_de": (
        "Danke.\n\nAm Mo., 16. Nov. 2026 um 09:30 Uhr schrieb Jürgen Schäfer <\n"
        "j.schaefer@mueller-bau.de>:\n> Angebot?\n",
        "Danke.",
    ),
    "gmail_es": (
        "Perfecto.\n\nEl lun, 16 nov 2026 a las 9:30, Lucía (<lucia@telefonica.es>) escribió:\n"
        "> Hola\n",
        "Perfecto.",
    ),
    "gmail_it": (
        "Va bene.\n\n"
        "Il giorno lun 16 nov 2026 alle ore 09:30 Giulia <giulia@libero.it> ha scritto:\n> Ciao\n",
        "Va bene.",
    ),
    "gmail_nl": (
        "Prima.\n\nOp ma 16 nov 2026 om 09:30 schreef Sanne <sanne@kpn.nl>:\n> Hoi\n",
        "Prima.",
    ),
    "gmail_pt": (
        "Ótimo.\n\nEm seg., 16 de nov. de 2026 às 09:30, João <joao@uol.com.br> escreveu:\n> Olá\n",
        "Ótimo.",
    ),
    "gmail_sv": (
        "Toppen.\n\nDen mån 16 nov. 2026 kl 09:30 skrev Erik <erik@telia.se>:\n> Hej\n",
        "Toppen.",
    ),
    "gmail_pl": (
        "Dziękuję.\n\nW dniu pon., 16 lis 2026 o 09:30 Łukasz <lukasz@wp.pl> napisał(a):\n"
        "> Witam\n",
        "Dziękuję.",
    ),
    "gmail_ru": (
        "Спасибо.\n\nпн, 16 нояб. 2026 г. в 09:30, Дмитрий <d.ivanov@yandex.ru>:\n> Привет\n",
        "Спасибо.",
    ),
    "outlook_desktop_en": (
        "Attached is the quote.\n\nBest regards,\nAnna\n\n"
        "From: Jordan Miles <jordan@northwind.example>\n"
        "Sent: Monday, November 16, 2026 9:30 AM\nTo: Anna Berg <anna@acme.example>\n"
        "Subject: Pricing\n\nPrices?\n",
        "Attached is the quote.\n\nBest regards,\nAnna",
    ),
    "outlook_web_de": (
        "Gerne.\n\n________________________________\nVon: Jürgen <j@mueller-bau.de>\n"
        "Gesendet: Montag, 16. November 2026 09:30\n"
        "An: Anna <anna@acme.example>\nBetreff: Angebot\n\nHallo\n",
        "Gerne.",
    ),
    "outlook_original_message_fr": (
        "C'est noté.\n\n-----Message d'origine-----\nDe : Camille [mailto:camille@orange.fr]\n"
        "Envoyé : lundi 16 novembre 2026 09:30\n",
        "C'est noté.",
    ),
    "outlook_original_message_de": ("OK.\n-----Ursprüngliche Nachricht-----\nVon: X\n", "OK."),
    "apple_mail_en": (
        "Yes.\n\nSent from my iPhone\n\n"
        "> On Nov 16, 2026, at 9:30 AM, Jordan Miles <jordan@northwind.example> wrote:\n>\n"
        "> Tuesday?\n",
        "Yes.",
    ),
    "apple_mail_de": (
        "Ja.\n\nVon meinem iPhone gesendet\n\n> Am 16.11.2026 um 09:30 schrieb Jürgen <j@x.de>:\n",
        "Ja.",
    ),
    "thunderbird_en": (
        "Agreed.\n\nOn 16/11/2026 09:30, Chris Walker wrote:\n> Tuesday?\n",
        "Agreed.",
    ),
    "signature_delimiter": ("See you then.\n\n-- \nAnna Berg\nAcme Logistics\n", "See you then."),
    "get_outlook": ("Will do.\n\nGet Outlook for iOS\n", "Will do."),
    "envoye_iphone": ("D'accord.\n\nEnvoyé de mon iPhone\n", "D'accord."),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reply_text(name: str) -> None:
    """Each client's quoted history and signature are cut from the reply."""
    text, expected = CASES[name]
    assert reply_text(text) == expected


def test_interleaved_quotes_keep_the_answers() -> None:
    """Inline answers between quoted lines are kept, the quoted lines dropped."""
    text = "> Can you do 40 pallets?\nYes.\n> From January?\nFrom February.\n"
    assert reply_text(text) == "Yes.\nFrom February."


def test_no_quote_is_unchanged() -> None:
    """A message with nothing quoted comes back exactly as it was."""
    text = "Hi Anna,\n\nCould you call me tomorrow?\n\nJordan\n"
    assert reply_text(text) == text


def test_all_quote_returns_the_input_stripped() -> None:
    """A reply that is nothing but quote is not emptied."""
    text = "\n> Can we visit on Tuesday?\n> Chris\n"
    assert reply_text(text) == text.strip()


def test_empty_input() -> None:
    """The empty string stays empty."""
    assert reply_text("") == ""


def test_body_mentioning_wrote_is_kept() -> None:
    """A sentence ending with "wrote:" but without date or address is not an attribution."""
    text = "Here is what the auditor wrote:\nAll good.\n"
    assert reply_text(text) == text
