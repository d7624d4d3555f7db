"""The words mail clients write into forwards and replies, in the common languages.

Header labels ("From:", "Von:", "差出人:"), the lines that open a forward ("Begin
forwarded message:", "-------- Přeposlaná zpráva --------") and the Outlook
"Original Message" line. Taken from the clients' own strings, not from memory:
Thunderbird's and Evolution's translations as Debian ships them
(``thunderbird-l10n-*``: ``mimeheader.properties``, ``composeMsgs.properties``;
``evolution-common``: ``evolution.mo``), the per-client tables of crisp's
``email-forward-parser`` (MIT: Apple Mail, Gmail, Outlook, Yahoo, HubSpot, IONOS,
MailMate, Missive) and the per-language constants of ``mail-parser-reply`` (MIT).
All lower-case: lookups fold case.
"""

from __future__ import annotations

import re

FROM_LABELS = frozenset({
    "from", "de", "von", "da", "van", "från", "fra", "lähettäjä", "od", "feladó", "от",
    "kimden", "afzender", "avsändare", "afsender", "avsender", "nadawca", "odesílatel",
    "remetente", "remitente", "mittente", "expéditeur", "absender", "отправитель",
    "gönderen", "sender", "feladó neve", "de la", "expeditorul", "expeditor", "від",
    "від кого", "šalje", "saatja", "từ", "差出人", "送信元", "发件人", "来自", "寄件者",
    "寄件人", "從", "보낸 사람", "보낸사람", "odosielateľ",
})  # fmt: skip
DATE_LABELS = frozenset({
    "date", "sent", "envoyé", "envoyé le", "gesendet", "enviado", "enviado el", "enviada em",
    "enviado em", "inviato", "verzonden", "skickat", "sendt", "lähetetty", "wysłano",
    "wysłane", "odesláno", "elküldve", "küldve", "отправлено", "gönderildi", "gönderilme",
    "gönderilen", "datum", "fecha", "data", "päivämäärä", "päiväys", "dátum", "дата",
    "tarih", "dato", "sent at", "dată", "trimis", "odoslané", "відправлено", "надіслано",
    "ngày", "đã gửi", "ngày gửi", "日付", "送信日時", "日期", "发送时间", "時間", "寄件日期",
    "날짜", "보낸 날짜", "보낸날짜", "poslano",
})  # fmt: skip
TO_LABELS = frozenset({
    "to", "à", "a", "an", "para", "aan", "till", "til", "vastaanottaja", "do", "komu",
    "címzett", "кому", "kime", "pour", "destinataire", "destinatario", "destinatário",
    "empfänger", "mottagare", "modtager", "mottaker", "adresat", "příjemce", "alıcı",
    "получатель", "címzettek", "către", "destinatarul", "pre", "prima", "đến", "cho",
    "宛先", "送信先", "收件人", "收件者", "到", "받는 사람", "받는사람", "adresát",
})  # fmt: skip
CC_LABELS = frozenset({
    "cc", "kopie", "copie", "copie à", "kopia", "kopio", "kopiot", "másolat", "másolatot kap",
    "копия", "копія", "bilgi", "kopi", "kopi til (cc)", "kopie (cc)", "kopia do", "dw",
    "cc.", "kópia", "抄送", "副本", "참조",
})  # fmt: skip
SUBJECT_LABELS = frozenset({
    "subject", "objet", "betreff", "asunto", "oggetto", "onderwerp", "assunto", "ämne",
    "emne", "aihe", "temat", "předmět", "tárgy", "тема", "konu", "sujet",
    "oggetto del messaggio", "predmet", "subiect", "subiectul", "naslov", "tiêu đề",
    "chủ đề", "件名", "主题", "主旨", "제목",
})  # fmt: skip
# Labels that may appear inside a header block and are skipped.
OTHER_LABELS = frozenset({
    "reply-to", "antwort an", "répondre à", "responder a", "importance", "wichtigkeit",
    "priorité", "attachments", "anlagen", "pièces jointes", "datos adjuntos", "allegati",
    "bijlagen", "anexos", "bilagor", "vedlegg", "vedhæftede filer", "liitteet", "załączniki",
    "přílohy", "mellékletek", "вложения", "ekler", "bcc", "cco", "ccn", "blindkopie",
    "odpověď na", "adresa pro odpověď", "komu odpovědět", "svar til", "svar-til", "svar till",
    "svara till", "antwoord aan", "vastaus", "vastausosoite", "válaszcím", "rispondi a",
    "odpowiedź-do", "odpowiedź do", "responder para", "responder-para", "răspuns către",
    "răspuns-către", "ответ-кому", "отвечать", "обратный адрес", "odpovedať-pre",
    "odpovedať na", "komu odpovedať", "yanıt adresi", "yanıtla", "кому відповісти",
    "відповісти", "зворотна адреса", "trả lời tới", "trả lời cho", "返信先", "回复地址",
    "回复至", "回函地址", "回覆", "회신 주소", "organization", "organisation", "organización",
    "organizace", "skrytá kopie", "ukryta kopia", "bcc.",
})  # fmt: skip
FIELD_BY_LABEL: dict[str, str] = {
    **{label: "other" for label in OTHER_LABELS},
    **{label: "cc" for label in CC_LABELS},
    **{label: "to" for label in TO_LABELS},
    **{label: "date" for label in DATE_LABELS},
    **{label: "subject" for label in SUBJECT_LABELS},
    **{label: "from" for label in FROM_LABELS},
}

# Words that name a forward in separator lines ("Forwarded message", "Begin
# forwarded message:", "Přeposlaná zpráva", "転送するメッセージ"...), as stems so
# inflections match.
FORWARD_WORDS = re.compile(
    r"forward|weiterge|réexpéd|transf[eé]r|reenvi|inoltr|doorgest|encaminh|vidarebef"
    r"|videres|välitet|edelleenlähet|przekaz|przesłan|přepos|prepos|ďalej odoslan|továbbít"
    r"|пересыл|пересл|пересила|переадрес|перенаправ|ilet|yönlendir|redirec|înaintat"
    r"|proslijeđ|chuyển tiếp|転送|전달|转发|轉寄|轉遞",
    re.IGNORECASE,
)
# Outlook's "-----Original Message-----" and its translations.
ORIGINAL_WORDS = re.compile(
    r"original message|ursprüngliche nachricht|message d'origine|mensaje original"
    r"|messaggio originale|oorspronkelijk bericht|mensagem original|ursprungligt meddelande"
    r"|opprinnelig melding|oprindelig meddelelse|oprindeligt brev|alkuperäinen viesti"
    r"|wiadomość oryginalna|oryginalna wiadomość|oryginalnej wiadomości|původní zpráva"
    r"|pôvodná správa|eredeti üzenet|исходное сообщение|оригінальне повідомлення"
    r"|початкове повідомлення|özgün ileti|orijinal mesaj|original nachricht"
    r"|mesajul original|mesaj original|thư gốc|원본 메시지|原始消息|原始信息|原始郵件"
    r"|元のメッセージ|オリジナルのメッセージ",
    re.IGNORECASE,
)
# The verbs of attribution lines ("On <date>, <name> <addr> wrote:").
WROTE_WORDS = re.compile(
    r"wrote|a écrit|schrieb|escribió|escreveu|ha scritto|scrive|schreef|geschreven|skrev"
    r"|skriver|følgende|följande|pisze|napisał|napisala|napsal|napísal|írta|kirjoitti"
    r"|написал|написала|пишет|написав|yazdı|a scris|đã viết|写道|寫道|님이 작성",
    re.IGNORECASE,
)
