"""Dates as mail clients write them into forward headers and attributions; pure, total.

``Mon, Nov 16, 2026 at 9:30 AM``, ``16. November 2026 um 09:30:15 MEZ``,
``2026年11月16日 9:30``, ``16 thg 11, 2026 lúc 09:30``... in any common language.
Month names are CLDR's (wide and abbreviated, format and stand-alone forms, taken
with Babel for en fr de es it nl pt sv da nb fi pl cs sk hu ru uk tr ro).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from core.mail import _mime

_MONTH_NAMES = (
    (
        "ene enero gen gennaio ian ianuarie jan janeiro januar januari january január januára "
        "januári janv janvier led leden ledna oca ocak sty styczeń stycznia tammi tammik "
        "tammikuu tammikuuta січ січень січня янв январь января "
    ),
    (
        "feb febbraio febr febrero februar februari februarie february február februára fev "
        "fevereiro fév févr février helmi helmik helmikuu helmikuuta lut lutego luty úno únor "
        "února şub şubat лют лютий лютого фев февр февраль февраля "
    ),
    (
        "bře březen března maalis maalisk maaliskuu maaliskuuta maart mar marca march marec "
        "mars mart martie marts marzec marzo março mrt mrz márc március mär märz бер березень "
        "березня мар март марта "
    ),
    (
        "abr abril apr april aprile aprilie apríl apríla avr avril dub duben dubna huhti "
        "huhtik huhtikuu huhtikuuta kwi kwiecień kwietnia nis nisan ápr április апр апрель "
        "апреля квіт квітень квітня "
    ),
    (
        "kvě květen května mag maggio mai maio maj maja may mayo mayıs mei máj mája május "
        "touko toukok toukokuu toukokuuta май мая трав травень травня "
    ),
    (
        "cze czerwca czerwiec giu giugno haz haziran iun iunie juin jun june junho juni junio "
        "jún júna június kesä kesäk kesäkuu kesäkuuta červen června čvn июн июнь июня черв "
        "червень червня "
    ),
    (
        "heinä heinäk heinäkuu heinäkuuta iul iulie juil juillet jul julho juli julio july "
        "júl júla július lip lipca lipiec lug luglio tem temmuz července červenec čvc июл "
        "июль июля лип липень липня "
    ),
    (
        "ago agosto août aug august augusta augusti augustus augusztus ağu ağustos elo elok "
        "elokuu elokuuta sie sierpień sierpnia srp srpen srpna авг август августа серп "
        "серпень серпня "
    ),
    (
        "eyl eylül sep sept september septembra septembre septembrie septiembre set setembro "
        "setiembre settembre syys syysk syyskuu syyskuuta szept szeptember wrz wrzesień "
        "września zář září вер вересень вересня сен сент сентябрь сентября "
    ),
    (
        "eki ekim loka lokak lokakuu lokakuuta oct october octobre octombrie octubre okt "
        "oktober október októbra ott ottobre out outubro paź październik października říj "
        "říjen října жовт жовтень жовтня окт октябрь октября "
    ),
    (
        "kas kasım lis listopad listopada listopadu marras marrask marraskuu marraskuuta "
        "noiembrie nov november novembra novembre novembro noviembre лист листопад листопада "
        "ноя нояб ноябрь ноября "
    ),
    (
        "ara aralık dec december decembra decembrie des desember dez dezember dezembro dic "
        "dicembre diciembre déc décembre gru grudnia grudzień joulu jouluk joulukuu "
        "joulukuuta pro prosince prosinec груд грудень грудня дек декабрь декабря "
    ),
)
# Croatian (CLDR too), but for "listopad(a)", October there and November in Czech
# and Polish, and the abbreviations that clash: the Czech and Polish reading wins.
_CROATIAN = (
    "siječanj siječnja", "veljača veljače", "ožujak ožujka", "travanj travnja",
    "svibanj svibnja", "lipanj lipnja", "srpanj srpnja", "kolovoz kolovoza", "rujan rujna",
    "", "studeni studenoga", "prosinac prosinca",
)  # fmt: skip
# More of CLDR, with Babel (ar bg bs ca cy el et eu gl he hi hr id is ka kk km lt lv mk
# ms nds nn fy ga sl sq sr ta th fa uz az be ia af sw zh ja ko vi ast br oc lb mt hy ur
# bn mr ne pa ml kn si ky mn tt ug): one-word names no language above reads otherwise.
_MORE_MONTH_NAMES = (
    (
        "ean eanáir gener genièr genver ion ionawr jaan jaanuar janar jannar "
        "jannewaris januaar januarie januario janvāris janúar saus sausio "
        "sausis sij siječanj siječnja urt urtarrila xan xaneiro xin xineru yan "
        "yanvar ιαν ιανουάριος ιανουαρίου гыйн гыйнвар сту студзень студзеня "
        "яну януари јан јануар јануари қаң қаңтар հնվ հունվար հունվարի ינואר "
        "ינו׳ جنوری يانۋار يناير ژانویه जनवरी जन॰ जाने जानेवारी জানু জানুয়ারি "
        "ਜਨਵਰੀ ஜனவரி ಜನವರಿ ജനു ജനുവരി දුරුතු มกราคม იან იანვარი មករា"
    ),
    (
        "chw chwef chwefror cʼhwe cʼhwevrer feabh feabhra febreiro febrer "
        "febreru febrewaris febrièr februaar februario februāris febrúar fevral "
        "fra frar ots otsaila shk shkurt vas vasario vasaris veebr veebruar "
        "velj veljača veljače φεβ φεβρουάριος φεβρουαρίου ақп ақпан лютага люты "
        "феб фебруар февруари փետրվար փետրվարի փտվ פברואר פבר׳ فبراير فروری "
        "فوریه فېۋرال फ़रवरी फ़र॰ फेब्रु फेब्रुअरी फेब्रुवारी ফেব ফেব্রুয়ারি "
        "ਫ਼ਰ ਫ਼ਰਵਰੀ பிப் பிப்ரவரி ಫೆಬ್ರ ಫೆಬ್ರವರಿ ഫെബ്രു ഫെബ്രുവരി නවම් "
        "กุมภาพันธ์ თებ თებერვალი កុម្ភៈ"
    ),
    (
        "kov kovas kovo mac machi maret martio martxoa marzu març maw mawrth "
        "meur meurzh márta mäe mäerz märts ožu ožujak ožujka μάρ μάρτιος μαρ "
        "μαρτίου нау наурыз сак сакавік сакавіка մարտ մարտի մրտ מרץ مارت مارس "
        "مارچ मार्च মার্চ ਮਾਰਚ மார் மார்ச் ಮಾರ್ಚ್ മാർ മാർച്ച് මැදින් มีนาคม მარ "
        "მარტი មីនា"
    ),
    (
        "abrëll aib aibreán api apirila aprel aprili aprill aprīlis bal "
        "balandis balandžio ebr ebrel ebrill pri prill tra travanj travnja απρ "
        "απρίλιος απριλίου април кра красавік красавіка сәу сәуір ապր ապրիլ "
        "ապրիլի אפריל אפר׳ آوریل أبريل ئاپرېل اپریل अप्रिल अप्रैल एप्रि एप्रिल "
        "এপ্রি এপ্রিল ਅਪ੍ਰੈ ਅਪ੍ਰੈਲ ஏப் ஏப்ரல் ಏಪ್ರಿ ಏಪ್ರಿಲ್ ഏപ്രി ഏപ്രിൽ බක් "
        "เมษายน აპრ აპრილი មេសា"
    ),
    (
        "beal bealtaine geg gegužė gegužės maaie mae maiatza maig maijs mayu "
        "maí mee mej mejju svi svibanj svibnja μάι μάιος μαΐ μαΐου мам мамыр "
        "мај մայիս մայիսի մյս מאי مئی ماي مايو മേയ് වෙසක් พฤษภาคม მაი მაისი "
        "ឧសភា"
    ),
    (
        "birž birželio birželis eka ekaina iyn iyun junh junie junij juny juuni "
        "júní jūn jūnijs lipanj lipnja meh mehefin meith meitheamh mezh "
        "mezheven qer qershor xun xunu xuño ġun ġunju ιουν ιουνίου ιούν ιούνιος "
        "мау маусым чэр чэрвень чэрвеня юни јун јуни հնս հունիս հունիսի יוני "
        "ئىيۇن جون يونيو ژوئن जुन जून জুন ਜੂਨ ஜூன் ಜೂನ್ ജൂൺ පොසොන් มิถุนายน ივნ "
        "ივნისი មិថុនា"
    ),
    (
        "gor gorff gorffennaf goue gouere iyl iyul iúil julai julhet julie "
        "julij juliol juuli júlí jūl jūlijs korr korrik liep liepa liepos lul "
        "lulju srpanj srpnja uzt uztaila xnt xul xullo xunetu ιουλ ιουλίου ιούλ "
        "ιούλιος ліп ліпень ліпеня шіл шілде юли јул јули հլս հուլիս հուլիսի "
        "יולי ئىيۇل جولائی يوليو ژوئیه जुलाई जुलै जुल॰ জুল জুলাই ਜੁਲਾ ਜੁਲਾਈ "
        "ஜூலை ಜುಲೈ ജൂലൈ ඇසළ กรกฎาคม ივლ ივლისი កក្កដា"
    ),
    (
        "abu abuztua agost agosti agostu agu agustus augusto augusts avg avgust "
        "avq avqust awst aww awwissu eost gush gusht kol kolovoz kolovoza lún "
        "lúnasa ogo ogos rugp rugpjūtis rugpjūčio ágú ágúst αυγ αυγούστου αύγ "
        "αύγουστος жні жнівень жніўня там тамыз օգոստոս օգոստոսի օգս אוגוסט "
        "אוג׳ أغسطس ئاۋغۇست اوت اگست अगस्ट अगस्त अग॰ ऑगस्ट আগস্ট ਅਗਸਤ ஆகஸ்ட் "
        "ಆಗಸ್ಟ್ ഓഗസ്റ്റ് නිකිණි สิงหาคม აგვ აგვისტო សីហា"
    ),
    (
        "gwen gwengolo ira iraila medi mfómh rugs rugsėjis rugsėjo ruj rujan "
        "rujna sen sentabr sentyabr septemba septembar septembris septimber "
        "setembre settembru sht shtator σεπ σεπτέμβριος σεπτεμβρίου верасень "
        "верасня сеп септембар септември қыр қыркүйек սեպ սեպտեմբեր սեպտեմբերի "
        "ספטמבר ספט׳ سبتمبر ستمبر سپتامبر سېنتەبىر सप्टें सप्टेंबर सितंबर सित॰ "
        "सेप्टेम्बर সেপ সেপ্ট সেপ্টেম্বর ਸਤੰ ਸਤੰਬਰ செப் செப்டம்பர் ಸೆಪ್ಟೆಂ "
        "ಸೆಪ್ಟೆಂಬರ್ സെപ്റ്റം സെപ്റ്റംബർ බිනර กันยายน სექ სექტემბერი កញ្ញា"
    ),
    (
        "dfómh here hyd hydref och ochobre octòbre oktabr oktoba oktobar "
        "oktobris oktoober oktover oktyabr ottubru spal spalio spalis tet tetor "
        "urr urria οκτ οκτωβρίου οκτώβριος кас кастрычнік кастрычніка октобар "
        "октомври қаз қазан հոկ հոկտեմբեր հոկտեմբերի אוקטובר אוק׳ أكتوبر "
        "ئۆكتەبىر اکتبر اکتوبر अक्टूबर अक्टू॰ अक्टोबर ऑक्टो ऑक्टोबर অক্টো "
        "অক্টোবর ਅਕਤੂ ਅਕਤੂਬਰ அக் அக்டோபர் ಅಕ್ಟೋ ಅಕ್ಟೋಬರ್ ഒക്ടോ ഒക്ടോബർ වප් "
        "ตุลาคม ოქტ ოქტომბერი តុលា"
    ),
    (
        "aza azaroa lapkr lapkritis lapkričio novemba novembar novembris "
        "novembru novimber noy noyabr nën nëntor nóv nóvember pay payares samh "
        "samhain stu studeni studenoga tach tachwedd νοέ νοέμβριος νοε "
        "νοεμβρίου ліс лістапад лістапада нов новембар ное ноември қар қараша "
        "նոյ նոյեմբեր նոյեմբերի נובמבר נוב׳ نوامبر نوفمبر نومبر نويابىر नवंबर "
        "नव॰ नोभेम्बर नोव्हें नोव्हेंबर নভে নভেম্বর ਨਵੰ ਨਵੰਬਰ நவம்பர் ನವೆಂ "
        "ನವೆಂಬರ್ നവം നവംബർ ඉල් พฤศจิกายน ნოე ნოემბერი វិច្ឆិកា 十一月"
    ),
    (
        "abe abendua avi avientu decembar decembre decembris decembro dek "
        "dekabr desemba desembre desimber dets detsember dhj dhjetor dis "
        "disember diċ diċembru gruod gruodis gruodžio kerzu kzu noll nollaig "
        "prosinac prosinca rhag rhagfyr δεκ δεκέμβριος δεκεμβρίου декември дец "
        "децембар жел желтоқсан сне снежань снежня դեկ դեկտեմբեր դեկտեմբերի "
        "דצמבר דצמ׳ دسامبر دسمبر ديسمبر دېكابىر डिसें डिसेंबर डिसेम्बर दिसंबर "
        "दिस॰ ডিসে ডিসেম্বর ਦਸੰ ਦਸੰਬਰ டிச டிசம்பர் ಡಿಸೆಂ ಡಿಸೆಂಬರ್ ഡിസം ഡിസംബർ "
        "උඳුවප් ธันวาคม დეკ დეკემბერი ធ្នូ 十二月"
    ),
)  # fmt: skip
MONTHS: dict[str, int] = {
    name: number
    for table in (_MORE_MONTH_NAMES, _CROATIAN)
    for number, names in enumerate(table, start=1)
    for name in names.split()
} | {
    name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()
}

_ZONES = {
    "utc": 0, "gmt": 0, "z": 0, "wet": 0, "west": 1, "bst": 1, "cet": 1, "mez": 1, "cest": 2,
    "mesz": 2, "eet": 2, "eest": 3, "msk": 3, "trt": 3, "est": -5, "edt": -4, "cst": -6,
    "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7, "jst": 9, "kst": 9, "aest": 10,
    "ist": 5.5, "hkt": 8, "sgt": 8, "awst": 8, "aedt": 11, "nzst": 12, "nzdt": 13,
}  # fmt: skip
_TIME = re.compile(r"(?<![\d.:])(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?![\d])")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
# 2026年11月16日 (Chinese, Japanese), 2026년 11월 16일 (Korean), 2026/11/16.
_CJK_DATE = re.compile(r"(?<!\d)(\d{4})\s?[年년/]\s?(\d{1,2})\s?[月월/]\s?(\d{1,2})(?!\d)")
# 16 thg 11, 2026 / 16 tháng 11 năm 2026 (Vietnamese).
_VI_DATE = re.compile(r"(?<!\d)(\d{1,2})\s+th(?:g|áng)\s*(\d{1,2}),?\s+(?:năm\s+)?(\d{4})(?!\d)")
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})\s?([./-])\s?(\d{1,2})\s?[./-]\s?(\d{4})(?!\d)")
_HU_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{4})\.\s?(\d{1,2})\.\s?(\d{1,2})\.?(?!\d)")
_OFFSET = re.compile(r"(?:(?:gmt|utc)\s*|(?<![\w:]))([+-])(\d{1,2})(?::?(\d{2}))?(?!\d)")
_RFC_SHAPE = re.compile(r"^(?:[a-z]{3},?\s*)?\d{1,2}\s+[a-z]{3}\s+\d{4}\s+\d{1,2}:\d{2}", re.I)
_MERIDIEM = re.compile(r"(?<!\w)([ap])\.?\s?m\.?(?!\w)")
# Afternoon and morning words: 下午/午後/오후 (pm), 上午/午前/오전 (am), Vietnamese CH/SA.
_PM_WORDS = re.compile(r"下午|午後|오후|(?<!\w)ch(?!\w)")
_AM_WORDS = re.compile(r"上午|午前|오전|(?<!\w)sa(?!\w)")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u200e\u200f\u2066-\u2069]")
_NUMBERED_MONTH = re.compile(r"(?<!\d)(\d{1,2})\s?[月월]")
# A word: letters with their combining marks (Tamil, Khmer), up to a digit, a space or a
# punctuation mark.
_WORD = re.compile(r"[^\W\d_][^\s\d,.;:/()\[\]<>'’+-]*")
_NUMBER = re.compile(r"(?<![\d+-])\d{1,4}(?!\d)")


def parse_loose_date(value: str, default_offset: timedelta = timedelta(0)) -> datetime | None:
    """Best-effort parse of a date written by a mail client in any language.

    RFC 5322 first, then month names and numeric forms with a time, an AM/PM
    marker and a zone (``GMT+1``, ``+0100``, ``CET``...). Without a zone the time is
    taken at ``default_offset`` (a client writes a forward header in its user's local
    time: the caller passes the forwarding message's offset). Returns an aware UTC
    datetime or ``None``; never raises.
    """
    try:
        return _parse_loose_date(value[:300], default_offset)
    except Exception:  # any odd value: the date is optional
        return None


def _parse_loose_date(value: str, default_offset: timedelta) -> datetime | None:
    value = value.strip()
    if not value or not any(c.isdigit() for c in value):
        return None
    rfc = _mime.parse_date(value) if _RFC_SHAPE.match(value) else None
    if rfc is not None:
        return rfc
    text = _INVISIBLE.sub("", value.lower().replace("\xa0", " ").replace("\u202f", " "))
    year = month = day = None
    numeric = (
        _ISO_DATE.search(text) or _CJK_DATE.search(text) or _VI_DATE.search(text)
        or _HU_NUMERIC_DATE.search(text) or _NUMERIC_DATE.search(text)
    )  # fmt: skip
    if numeric is not None:
        groups = numeric.groups()
        if numeric.re is _NUMERIC_DATE:
            first, sep, second, year_text = groups
            a, b, year = int(first), int(second), int(year_text)
            us = sep == "/" and (b > 12 or (a <= 12 and _MERIDIEM.search(text) is not None))
            month, day = (a, b) if us else (b, a)
        elif numeric.re is _VI_DATE:
            day, month, year = (int(g) for g in groups)
        else:
            year, month, day = (int(g) for g in groups)
        text = text[: numeric.start()] + " " + text[numeric.end() :]
    hour = minute = second_ = 0
    time_match = _TIME.search(text)
    if time_match is not None:
        hour, minute = int(time_match.group(1)), int(time_match.group(2))
        second_ = int(time_match.group(3) or 0)
        rest = text[time_match.end() :]
        text = text[: time_match.start()] + " " + rest
        hour = _with_meridiem(hour, rest, text)
    offset = _zone_offset(text, time_match is not None, default_offset)
    if month is None:
        months = [MONTHS[w] for w in _WORD.findall(text) if w in MONTHS]
        numbered = _NUMBERED_MONTH.search(text)  # 6月 23, 2010 (SOGo, ja)
        if numbered is not None and not months:
            months = [int(numbered.group(1))]
            text = text[: numbered.start()] + " " + text[numbered.end() :]
        if not months or not 1 <= months[-1] <= 12:
            return None
        month = months[-1]  # a weekday like "mar." (mardi) precedes the real month
        numbers = [int(n) for n in _NUMBER.findall(text)]
        years = [n for n in numbers if 1900 <= n <= 2200]
        days = [n for n in numbers if 1 <= n <= 31]
        if not years or not days:
            return None
        year, day = years[0], days[0]
    if year is None or day is None:
        return None
    local = datetime(year, month, day, hour, minute, second_, tzinfo=timezone(offset))
    return local.astimezone(UTC)


def _with_meridiem(hour: int, after_time: str, text: str) -> int:
    meridiem = _MERIDIEM.search(after_time)
    pm = meridiem.group(1) == "p" if meridiem is not None else None
    if pm is None and _PM_WORDS.search(text):
        pm = True
    elif pm is None and _AM_WORDS.search(text):
        pm = False
    if pm is True and hour < 12:
        return hour + 12
    if pm is False and hour == 12:
        return 0
    return hour


def _zone_offset(text: str, has_time: bool, default: timedelta) -> timedelta:
    if not has_time:
        return timedelta(0)
    match = _OFFSET.search(text)
    if match is not None:
        sign = -1 if match.group(1) == "-" else 1
        digits = match.group(2)
        hours, minutes = int(digits), int(match.group(3) or 0)
        if len(digits) <= 2 and hours <= 14 and minutes < 60:
            return sign * timedelta(hours=hours, minutes=minutes)
    for word in _WORD.findall(text):
        if word in _ZONES:
            return timedelta(hours=_ZONES[word])
    return default
