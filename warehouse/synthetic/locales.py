"""Everything that differs between the English and the Russian universe.

Name pools and their frequencies, nicknames, email domains, how people write
their phone numbers, junk values typed into forms, currency and price level.
Only data lives here; the generators read it through `LOCALES[code]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import faker.providers.person.en_US as faker_en
import faker.providers.person.ru_RU as faker_ru
import numpy as np

__all__ = ["LOCALES", "Locale", "PhoneFormat"]

PhoneFormat = Callable[[str], str]
"""Writes a 10-digit national number the way a person might type it."""


@dataclass(frozen=True)
class Locale:
    code: str
    faker: str
    phone_region: str
    country_code: str
    currency: str
    price_scale: float
    first_names: dict[str, tuple[list[str], np.ndarray]]  # gender -> (names, probabilities)
    last_names: tuple[list[str], list[str], np.ndarray]  # male forms, female forms, probabilities
    nicknames: dict[str, tuple[str, ...]]
    email_domains: tuple[list[str], np.ndarray]
    plus_domains: frozenset[str]
    dot_blind_domains: frozenset[str]
    mobile_prefixes: tuple[str, ...]
    landline_prefixes: tuple[str, ...]
    phone_formats: tuple[tuple[PhoneFormat, float], ...]
    junk_emails: tuple[str, ...]
    junk_phones: tuple[str, ...]
    junk_names: tuple[tuple[str, str], ...]
    plus_tags: tuple[str, ...]


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def _weighted(names: dict[str, float]) -> tuple[list[str], np.ndarray]:
    weights = np.array(list(names.values()), dtype=float)
    return list(names), weights / weights.sum()


def _common_first(common: list[str], rare: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Common names by rank (Zipf) carry 85% of the mass; Faker's long list the rest."""
    rest = [n for n in rare if n not in common]
    weights = np.concatenate([0.85 * _zipf(len(common), 0.5), np.full(len(rest), 0.15 / len(rest))])
    return common + rest, weights / weights.sum()


# --- English ---------------------------------------------------------------------------------

EN_NICKNAMES = {
    "William": ("Bill", "Will", "Billy"),
    "Robert": ("Bob", "Rob", "Bobby"),
    "Alexander": ("Alex", "Sasha", "Xander"),
    "Alexandra": ("Alex", "Sasha", "Lexi"),
    "Elizabeth": ("Liz", "Beth", "Betty"),
    "Katherine": ("Kate", "Katie", "Kathy"),
    "Catherine": ("Cathy", "Kate"),
    "Michael": ("Mike", "Mikey"),
    "James": ("Jim", "Jimmy", "Jamie"),
    "Richard": ("Rick", "Dick", "Rich"),
    "Margaret": ("Maggie", "Peggy", "Meg"),
    "Jennifer": ("Jen", "Jenny"),
    "Christopher": ("Chris", "Kit"),
    "Christina": ("Tina", "Chris"),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Anthony": ("Tony",),
    "Joseph": ("Joe", "Joey"),
    "Thomas": ("Tom", "Tommy"),
    "Charles": ("Charlie", "Chuck"),
    "Patricia": ("Pat", "Patty", "Trish"),
    "Jonathan": ("Jon", "Jonny"),
    "Nicholas": ("Nick",),
    "Samuel": ("Sam",),
    "Samantha": ("Sam", "Sammy"),
    "Benjamin": ("Ben",),
    "Andrew": ("Andy", "Drew"),
    "Joshua": ("Josh",),
    "Steven": ("Steve",),
    "Stephen": ("Steve",),
    "Timothy": ("Tim",),
    "Kenneth": ("Ken", "Kenny"),
    "Edward": ("Ed", "Ted", "Eddie"),
    "Susan": ("Sue", "Suzy"),
    "Deborah": ("Debbie", "Deb"),
    "Rebecca": ("Becky", "Becca"),
    "Jessica": ("Jess", "Jessie"),
    "Victoria": ("Vicky", "Tori"),
    "Zachary": ("Zach",),
    "Gregory": ("Greg",),
    "Jeffrey": ("Jeff",),
    "Ronald": ("Ron", "Ronnie"),
    "Donald": ("Don", "Donnie"),
    "Lawrence": ("Larry",),
    "Raymond": ("Ray",),
    "Gerald": ("Jerry",),
    "Barbara": ("Barb", "Barbie"),
    "Cynthia": ("Cindy",),
    "Kimberly": ("Kim",),
    "Pamela": ("Pam",),
    "Stephanie": ("Steph",),
    "Abigail": ("Abby",),
    "Madison": ("Maddie",),
    "Isabella": ("Bella", "Izzy"),
    "Frederick": ("Fred", "Freddie"),
    "Theodore": ("Ted", "Teddy", "Theo"),
    "Eugene": ("Gene",),
    "Leonard": ("Leo", "Len"),
    "David": ("Dave", "Davey"),
    "Nathan": ("Nate",),
    "Gabriel": ("Gabe",),
    "Jacob": ("Jake",),
    "Peter": ("Pete",),
    "Douglas": ("Doug",),
    "Dorothy": ("Dot", "Dottie"),
    "Jacqueline": ("Jackie",),
    "Melissa": ("Mel", "Missy"),
    "Amanda": ("Mandy",),
    "Kathleen": ("Kathy",),
    "Christine": ("Chris", "Chrissy"),
}

EN = Locale(
    code="en",
    faker="en_US",
    phone_region="US",
    country_code="1",
    currency="USD",
    price_scale=1.0,
    first_names={
        "F": _weighted(faker_en.Provider.first_names_female),
        "M": _weighted(faker_en.Provider.first_names_male),
    },
    last_names=(
        list(faker_en.Provider.last_names),
        list(faker_en.Provider.last_names),
        _weighted(faker_en.Provider.last_names)[1],
    ),
    nicknames=EN_NICKNAMES,
    email_domains=_weighted(
        {
            "gmail.com": 40,
            "yahoo.com": 14,
            "outlook.com": 10,
            "hotmail.com": 9,
            "icloud.com": 8,
            "aol.com": 4,
            "comcast.net": 3,
            "protonmail.com": 2,
        }
    ),
    plus_domains=frozenset({"gmail.com", "outlook.com", "hotmail.com", "icloud.com"}),
    dot_blind_domains=frozenset({"gmail.com"}),
    mobile_prefixes=(
        "201",
        "202",
        "206",
        "212",
        "213",
        "303",
        "305",
        "310",
        "312",
        "404",
        "415",
        "503",
        "512",
        "602",
        "617",
        "619",
        "646",
        "702",
        "713",
        "718",
        "773",
        "786",
        "818",
        "832",
        "847",
        "917",
        "929",
        "972",
    ),  # fmt: skip
    landline_prefixes=("212", "312", "415", "617", "713", "206", "303", "404"),
    phone_formats=(
        (lambda n: f"({n[:3]}) {n[3:6]}-{n[6:]}", 0.30),
        (lambda n: f"{n[:3]}-{n[3:6]}-{n[6:]}", 0.20),
        (lambda n: f"+1 {n[:3]} {n[3:6]} {n[6:]}", 0.12),
        (lambda n: f"+1{n}", 0.10),
        (lambda n: n, 0.12),
        (lambda n: f"1-{n[:3]}-{n[3:6]}-{n[6:]}", 0.06),
        (lambda n: f"{n[:3]}.{n[3:6]}.{n[6:]}", 0.06),
        (lambda n: f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}", 0.04),
    ),
    junk_emails=(
        "test@test.com",
        "none@none.com",
        "noemail@example.com",
        "a@a.com",
        "asdf@asdf.com",
        "no@email.com",
    ),
    junk_phones=("0000000000", "1234567890", "555-555-5555", "(999) 999-9999", "n/a"),
    junk_names=(("Test", "Test"), ("Customer", "Guest"), ("X", "X")),
    plus_tags=("shop", "promo", "news", "store", "deals", "orders"),
)

# --- Russian ---------------------------------------------------------------------------------

RU_COMMON_MALE = [
    "Александр",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Алексей",
    "Максим",
    "Евгений",
    "Иван",
    "Михаил",
    "Артём",
    "Владимир",
    "Николай",
    "Денис",
    "Павел",
    "Роман",
    "Игорь",
    "Олег",
    "Никита",
    "Кирилл",
    "Антон",
    "Юрий",
    "Виктор",
    "Илья",
    "Егор",
    "Константин",
    "Вадим",
    "Виталий",
    "Василий",
    "Григорий",
    "Станислав",
    "Руслан",
    "Фёдор",
    "Пётр",
    "Тимофей",
    "Семён",
    "Степан",
    "Ярослав",
    "Леонид",
    "Валерий",
    "Борис",
    "Анатолий",
    "Геннадий",
    "Георгий",
    "Матвей",
    "Вячеслав",
]
RU_COMMON_FEMALE = [
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Ирина",
    "Екатерина",
    "Светлана",
    "Юлия",
    "Анастасия",
    "Марина",
    "Дарья",
    "Алина",
    "Ксения",
    "Виктория",
    "Полина",
    "Людмила",
    "Галина",
    "Надежда",
    "Валентина",
    "Любовь",
    "Софья",
    "Елизавета",
    "Вера",
    "Александра",
    "Евгения",
    "Оксана",
    "Алёна",
    "Кристина",
    "Яна",
    "Вероника",
    "Лариса",
    "Нина",
    "Тамара",
    "Диана",
]

RU_NICKNAMES = {
    "Александр": ("Саша", "Шура", "Саня"),
    "Александра": ("Саша", "Шура"),
    "Алексей": ("Лёша", "Алёша", "Леша"),
    "Анастасия": ("Настя",),
    "Анна": ("Аня", "Анюта"),
    "Андрей": ("Андрюша",),
    "Борис": ("Боря",),
    "Валентина": ("Валя",),
    "Василий": ("Вася",),
    "Виктор": ("Витя",),
    "Владимир": ("Вова", "Володя"),
    "Вячеслав": ("Слава",),
    "Галина": ("Галя",),
    "Георгий": ("Гоша", "Жора"),
    "Григорий": ("Гриша",),
    "Дмитрий": ("Дима", "Митя"),
    "Дарья": ("Даша",),
    "Евгений": ("Женя",),
    "Евгения": ("Женя",),
    "Екатерина": ("Катя",),
    "Елена": ("Лена",),
    "Елизавета": ("Лиза",),
    "Иван": ("Ваня",),
    "Илья": ("Илюша",),
    "Ирина": ("Ира",),
    "Константин": ("Костя",),
    "Ксения": ("Ксюша",),
    "Людмила": ("Люда", "Мила"),
    "Любовь": ("Люба",),
    "Мария": ("Маша",),
    "Максим": ("Макс",),
    "Михаил": ("Миша",),
    "Надежда": ("Надя",),
    "Наталья": ("Наташа",),
    "Николай": ("Коля",),
    "Ольга": ("Оля",),
    "Павел": ("Паша",),
    "Пётр": ("Петя",),
    "Роман": ("Рома",),
    "Сергей": ("Серёжа", "Сережа"),
    "Светлана": ("Света",),
    "Семён": ("Сёма",),
    "Станислав": ("Стас",),
    "Софья": ("Соня",),
    "Степан": ("Стёпа",),
    "Татьяна": ("Таня",),
    "Тимофей": ("Тима",),
    "Фёдор": ("Федя",),
    "Юлия": ("Юля",),
    "Юрий": ("Юра",),
    "Ярослав": ("Слава",),
    "Валерий": ("Валера",),
    "Леонид": ("Лёня",),
    "Анатолий": ("Толя",),
    "Виктория": ("Вика",),
    "Вероника": ("Ника",),
    "Кристина": ("Кристя",),
}

RU = Locale(
    code="ru",
    faker="ru_RU",
    phone_region="RU",
    country_code="7",
    currency="RUB",
    price_scale=80.0,
    first_names={
        "F": _common_first(RU_COMMON_FEMALE, faker_ru.Provider.first_names_female),
        "M": _common_first(RU_COMMON_MALE, faker_ru.Provider.first_names_male),
    },
    last_names=(
        list(faker_ru.Provider.last_names_male),
        list(faker_ru.Provider.last_names_female),
        _zipf(len(faker_ru.Provider.last_names_male), 0.3),
    ),
    nicknames=RU_NICKNAMES,
    email_domains=_weighted(
        {
            "mail.ru": 30,
            "yandex.ru": 25,
            "gmail.com": 20,
            "rambler.ru": 6,
            "bk.ru": 6,
            "list.ru": 5,
            "inbox.ru": 5,
            "ya.ru": 3,
        }
    ),
    plus_domains=frozenset({"gmail.com", "yandex.ru", "ya.ru"}),
    dot_blind_domains=frozenset({"gmail.com"}),
    mobile_prefixes=(
        "903",
        "905",
        "909",
        "910",
        "912",
        "915",
        "916",
        "917",
        "919",
        "920",
        "921",
        "925",
        "926",
        "927",
        "929",
        "950",
        "951",
        "952",
        "960",
        "961",
        "965",
        "977",
        "985",
        "999",
    ),  # fmt: skip
    landline_prefixes=("495", "499", "812", "343", "383", "846", "861", "863"),
    phone_formats=(
        (lambda n: f"+7 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}", 0.30),
        (lambda n: f"8{n}", 0.20),
        (lambda n: f"+7{n}", 0.12),
        (lambda n: f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}", 0.12),
        (lambda n: f"8-{n[:3]}-{n[3:6]}-{n[6:8]}-{n[8:]}", 0.07),
        (lambda n: f"{n[:3]}-{n[3:6]}-{n[6:]}", 0.06),
        (lambda n: f"+7 {n[:3]} {n[3:6]} {n[6:]}", 0.07),
        (lambda n: f"7 {n[:3]} {n[3:6]} {n[6:8]} {n[8:]}", 0.06),
    ),
    junk_emails=(
        "test@test.com",
        "test@mail.ru",
        "net@net.ru",
        "123@mail.ru",
        "noemail@example.com",
        "a@a.ru",
    ),
    junk_phones=("+7 (999) 999-99-99", "89999999999", "0000000000", "81234567890", "нет"),
    junk_names=(("Тест", "Тестов"), ("Покупатель", "Гость"), ("Х", "Х")),
    plus_tags=("shop", "promo", "news", "magazin", "skidki"),
)

LOCALES: dict[str, Locale] = {"en": EN, "ru": RU}
