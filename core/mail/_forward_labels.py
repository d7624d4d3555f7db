"""The words mail clients write into forwards and replies, in the common languages.

Header labels ("From:", "Von:", "差出人:"), the lines that open a forward ("Begin
forwarded message:", "-------- Přeposlaná zpráva --------") and the Outlook
"Original Message" line. Taken from the clients' own strings, not from memory:
Thunderbird's and Evolution's translations as Debian ships them
(``thunderbird-l10n-*``: ``mimeheader.properties``, ``composeMsgs.properties``;
``evolution-common``: ``evolution.mo``), the per-client tables of crisp's
``email-forward-parser`` (MIT: Apple Mail, Gmail, Outlook, Yahoo, HubSpot, IONOS,
MailMate, Missive), the per-language constants of ``mail-parser-reply`` (MIT),
Roundcube's localization (``roundcube-core``), the forward templates of SOGo
(``sogo-common``), Claws Mail (``claws-mail-i18n``), KMail (``kf5-messagelib-data``)
and Horde IMP (``php-horde-imp``).
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
# Roundcube's labels (roundcube-core: program/localization/*/labels.inc, 88 languages),
# SOGo's forward templates (sogo-common: Mailer.SOGo/Resources/SOGoMail*Forward.wo, 42
# languages) and Claws Mail's (claws-mail-i18n: forward_body_format), where they add to
# the tables above; a label that means another field above is left out.
_WEBMAIL_LABELS: dict[str, tuple[str, ...]] = {
    "from": (
        "dari", "daripada", "des de", "desde", "eus", "fan", "frá", "frå", "gönderici",
        "gửi từ", "keneltä", "kimdan", "kimdən", "nga", "no", "nork", "nuo", "oddi wrth",
        "pengirim", "remitent", "sendanto", "seolaí", "siuntėjas", "vun", "şandyar",
        "αποστολέας", "από", "ад", "кімнен", "од", "хэнээс", "ուղարկող", "מאת", "ارسال کننده",
        "از", "استوونکی", "المرسل", "دىن", "لە", "من", "प्रेषक", "भेजने वाला", "প্রেরক",
        "அனுப்புனர்", "ಇಂದ", "പ്രേഷിതന്", "වෙතින්", "ผู้ส่ง", "გამგზავნი", "ካብ", "អ្នកផ្ញើ",
        "発信者", "送信者",
    ),
    "date": (
        "dags", "dagsetning", "datums", "datë", "deiz", "dyddiad", "dáta", "däts", "dîrok",
        "kuupäev", "pvm", "sana", "tanggal", "tann", "tarikh", "tarix", "ημερομηνία", "датум",
        "күні", "огноо", "ամսաթիվ", "תאריך", "التاريخ", "بەروار", "تاريخ", "تاریخ", "نېټه",
        "چېسلا", "तारिख", "तारीख", "दिनांक", "তারিখ", "தேதி", "ದಿನಾಂಕ", "തീയതി", "දිනය",
        "วันที่", "თარიღი", "ዕለት", "កាលបរិច្ឆេត",
    ),
    "to": (
        "chuig", "derbyniwr", "destinatar", "destinatari", "destinatario(a)", "gavėjas", "i",
        "kam", "kenelle", "kepada", "kimga", "kimə", "người nhận", "nori", "oan", "ontvanger",
        "pa", "penerima", "per a", "për", "ricevanto", "saaja", "standyar", "un", "za",
        "παραλήπτης", "προς", "до", "за", "каму", "кімге", "примач", "хэнд", "ստացող", "אל",
        "إلى", "المستقبل", "به", "بۆ", "ترلاسه کوونکی", "غا", "ګيرينده", "पाने वाला", "प्रती",
        "प्रापक", "প্রাপক", "பெறுனர்", "ಗೆ", "സ്വീകര്ത്താവ്", "වෙත", "ผู้รับ", "ვის", "ናብ",
        "អ្នកទទួល",
    ),
    "cc": (
        "afrit", "copi", "copia", "copia (cc)", "copie (cc)", "copy", "cópia", "in copia a",
        "karbon kopya", "koopia", "kopi til", "kopi-til", "kopija", "kopiraj", "kopiya karbon",
        "kopya", "kp", "lampiran", "nusxasi", "nüsxə", "đồng kính gửi", "κοινοποίηση",
        "копие до", "копирај", "көшірме", "цц", "לידיעה", "מכותב", "تکثیر", "رونوشت",
        "قۇشۇمچە", "لمېسل", "نسخة", "نسخة إلي", "कार्बन", "प्रत", "बोधार्थ", "অনুলিপির ঠিকানা",
        "நகல்", "คัดลอก", "ასლი", "ካኮ", "写し(cc)",
    ),
    "subject": (
        "assumpte", "asuntu", "başlık", "efni", "evni", "gaia", "judul", "mavzu", "mijar",
        "mövzu", "pealkiri", "pwnc", "subjecto", "subjek", "subjekt", "subxhect", "subyek",
        "sujed", "tema", "temats", "temo", "testun", "titill", "zadeva", "ábhair", "ûnderwerp",
        "θέμα", "гарчиг", "заглавие", "наслов", "тақырыбы", "тэма", "վերնագիր", "נושא",
        "الموضوع", "تىما", "مضمون", "موضوع", "ناونیشان", "विशय", "विषय", "বিষয়", "தலைப்பு",
        "ವಿಷಯ", "വിഷയം", "මාතෘකාව", "หัวจดหมาย", "სათაური", "ዋኒን", "ចំណងជើង",
    ),
    "other": (
        "antwoord-aan", "antwoorden aan", "antwurd oan", "atbildēt uz", "atbildēt-uz",
        "ateb-i", "atsakymą gaus", "atsakyti", "atsauces", "balas kepada", "balasan kepada",
        "cavabla", "contestar a", "cyfeirnodau", "diskusné skupiny", "diskuzní skupiny",
        "erantzun honi", "forums de discussion", "freagair go", "fréttahópar", "grupa novosti",
        "grupe", "grupe novosti", "grupo noticias", "grupuri de știri", "grupy dyskusyjne",
        "grwpiau newyddion", "habergrupları", "hivatkozások", "hírcsoportok", "intereškopas",
        "javob berish", "kelompok berita", "kuruluş", "membalas ke", "naujienų grupės",
        "navnîşanên standyar", "newsgroup", "newsgroups", "nuorodos", "nyhetsgrupper",
        "odgovor na", "odgovori", "odkazy", "odniesienia", "odpoveď na", "organisaatio",
        "organisasi", "organisasjon", "organizacija", "organizacja", "organização",
        "organizație", "organizzazione", "organizácia", "organizācija", "referanlar",
        "referanser", "reference", "references", "referencias", "referenser", "referensi",
        "referenzen", "referințe", "referências", "reply-to adresa", "respon a", "responder-a",
        "respondu-al", "respont-da", "riferimento", "références", "răspunde la", "sefydliad",
        "skipulagseining", "skupine novic", "svar-till", "svara-til", "szervezet",
        "tilvísanir", "uutisryhmät", "vastaus osoitteeseen", "vastus aadressile", "viitteet",
        "yanıtlama adresi", "ymateb i", "äntwert un", "απάντηση στο", "адказаць-на",
        "група новости", "групи новин", "жауап беру", "жаңалықтар тобы", "зворотня адреса",
        "новостные группы", "одговори", "организация", "организација", "організація",
        "ответить", "отговор до", "посилання", "препрати на", "референце", "ссылки",
        "сілтемелер", "хариулах-хэнд", "ұйым", "אירגון", "השב", "כתובת למענה", "קבוצות חדשות",
        "תזכור", "الرد إلى", "المراجع", "المنظمة", "جواب نامه", "ردً على", "غا جاۋاپ قايتۇرۇش",
        "مجموعات الأخبار", "وەڵامدانەوە-بۆ", "پاسخ-به", "ځوابول", "जवाब यहाँ",
        "यास उत्तर द्या", "लाई-जवाफ", "উত্তর পাঠানোর ঠিকানা", "பதிலளி", "පිළිතුරු සඳහා",
        "ตอบกลับ", "პასუხი", "ተመላሲ ናብ", "ឆ្លើយតបទៅកាន់", "リファレンス", "公司", "參照",
        "參考", "回覆帳號", "回覆至", "新しいグループ", "新聞群組", "組織",
    ),
}  # fmt: skip
# Roundcube's and SOGo's "Original Message" lines, in their languages.
_WEBMAIL_ORIGINAL = (
    "An teachtaireacht bhunaidh", "Asl xat", "Courriel original", "Esialgne kiri",
    "Izvorna poruka", "Izvorno sporočilo", "Jatorrizko mezua", "Kemennadenn orin",
    "Mensaxe orixinal", "Mesaj Inițial", "Mesazhi Origjinal", "Mesej Asal", "Message original",
    "Missatge Original", "Neges Wreiddiol", "Oarspronklik Berjocht", "Oorspronkelijke bericht",
    "Opphavleg melding", "Orgineel bericht", "Original besked", "Original-Message",
    "Original-Nachricht", "Originala mesaĝo", "Originalan E-mail", "Originalmeddelande",
    "Originalna poruka", "Originalnachricht", "Originalpost", "Originalus laiškas",
    "Originalus pranešimas", "Orijinal məktub", "Orjinal İleti", "Pesan Asli",
    "Peyama orîjînal", "Sākotnējais ziņojums", "Sākotnējā vēstule", "Uppruna boð",
    "Upprunaleg skilaboð", "Upprunalegt bréf", "Αρχικό μήνυμα", "Арыгінальнае паведамленне",
    "Оригинална порака", "Оригинална порука", "Оригинално писмо", "Шығыс хат",
    "Առաջին հաղորդագրությունը", "הודעה מקורית", "ئەسلىي خەت", "الرسالة الأساسية",
    "الرسالة الاصلية", "پیام اصلی", "खरा संदेश", "ಮೂಲ ಸಂದೇಶ", "യഥാര്ഥ സന്ദേശം", "ข้อความเดิม",
    "ორიგინალი შეტყობინება", "សារដើម", "原始信件", "原始訊息", "原始邮件",
)  # fmt: skip
# KMail's default forward templates (kf5-messagelib-data: libtemplateparser.mo), where
# they add to the tables above. Its zh_CN template shifts its labels by one (发件人:
# holds the time): that translation is left out.
_KMAIL_LABELS: dict[str, tuple[str, ...]] = {
    "from": ("مِن", "kellelt", "ex", "кімден", "ពី", "ਵਲੋਂ", "அனுப்புநர்", "di"),
    "date": ("кезі", "កាលបរិច្ឆេទ", "ਮਿਤੀ"),
    "subject": ("teema", "ប្រធានបទ", "bedröppt", "ਵਿਸ਼ਾ", "rubrik", "sudjet"),
}  # fmt: skip
# KMail's "---------- Forwarded Message ----------" lines its stems above miss.
_KMAIL_FORWARD = (
    "Edasi saadetud kiri", "Messaedje ricassî", "Message reexpedite", "Message transmis",
    "Persiųstas laiškas", "Posredovano sporočilo", "Wiederleddt Naricht", "prosleđena poruka",
    "Басқаға жіберілген хат", "Препратено съобщение", "прослеђена порука", "رسالة ممرّرة",
    "ਅੱਗੇ ਭੇਜਿਆ ਸੁਨੇਹਾ", "முன்னனுப்பப்பட்ட அஞ்சல்", "សារបញ្ជូនបន្ត",
)  # fmt: skip
# Horde IMP's forward text (php-horde-imp: lib/Compose.php forwardMessageText(), its
# translations in locale/*/LC_MESSAGES/imp.mo), where they add to the tables above.
_HORDE_LABELS: dict[str, tuple[str, ...]] = {
    "from": ("sūtītājs", "от кого", "จาก"),
    "to": ("catre", "kellele", "saņēmējs", "الى", "ถึง", "ទៅ"),
    "cc": ("a/c", "kk", "копија", "העתקים", "สำเนาถึง", "ចម្លង"),
    "subject": ("otsikko", "perihal", "ärende", "عنوان", "ชื่อเรื่อง"),
    "other": (
        "odgovori-na", "odpovedať-na", "odpovědět-komu", "resposta para", "rispondi-a",
        "vasta", "viszontválasz cím", "yanıt-adresi", "απάντηση-προς", "кому ответить",
        "отговор-до", "پاسخ به", "ឆ្លើយតប-ទៅ", "回覆到", "答复", "회신",
    ),
}  # fmt: skip
# Its "----- Forwarded message from NAME -----" lines the stems above miss.
_HORDE_FORWARD = (
    "(e)tik birbidalitako mezua", "Birbidalitako mezua", "Copie Mesaj trimisa de",
    "Edastatud kiri", "Proslijedjena poruka od", "Pārsūtīta vēstule no",
    "Pārsūtītā vēstule", "Teruskan pesan dari", "Vidaresende meldingar frå",
    "Vidaresendt melding", "Áframsent skeyti", "Προώθηση μηνύματος από",
    "Переправленое сообщение от", "Препратена порака од", "Препратено писмо",
    "رسالة محولة من", "پیغام ارجاع شده", "ข้อความที่ส่งต่อมาจาก", "សារដែលបានបញ្ជូនបន្ត",
)  # fmt: skip
FIELD_BY_LABEL: dict[str, str] = {
    **{label: field for field, labels in _WEBMAIL_LABELS.items() for label in labels},
    **{label: field for field, labels in _KMAIL_LABELS.items() for label in labels},
    **{label: field for field, labels in _HORDE_LABELS.items() for label in labels},
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
    r"|proslijeđ|chuyển tiếp|転送|전달|转发|轉寄|轉遞|předan|προωθ|diterusk|poslanej ďalej"
    r"|redirig|przekierow|"
    + "|".join(re.escape(phrase) for phrase in (*_KMAIL_FORWARD, *_HORDE_FORWARD)),
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
    r"|元のメッセージ|オリジナルのメッセージ|"
    + "|".join(re.escape(phrase) for phrase in _WEBMAIL_ORIGINAL),
    re.IGNORECASE,
)
# The verbs of attribution lines ("On <date>, <name> <addr> wrote:").
WROTE_WORDS = re.compile(
    r"wrote|a écrit|schrieb|escribió|escreveu|ha scritto|scrive|schreef|geschreven|skrev"
    r"|skriver|følgende|följande|pisze|napisał|napisala|napsal|napísal|írta|kirjoitti"
    r"|написал|написала|пишет|написав|yazdı|a scris|đã viết|写道|寫道|님이 작성",
    re.IGNORECASE,
)
