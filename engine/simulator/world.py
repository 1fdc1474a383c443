"""The simulator's seeded world: tournaments, teams, fixtures, and what each book quotes.

Everything is a pure function of (seed, events, anchor), so a test process can rebuild the
exact world a simulator process serves (tests/conftest.py ``world_of``) and use it as ground
truth. Building is cheap (no prices); an event's true table and its three books' quotes are
computed on first request and kept, because the server asks for every (book, event) once per
scrape cycle and a 1,500-event world must answer ~4,500 of those per cycle.

Sizes follow the earlier tool's production numbers (reference/README.md): ~1,500 events over
~150 tournaments at full size, BetPawa listing fewer events than SportyBet and Bet9ja, and a
few events per cycle kicking off within two hours.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.bookmakers._models import Price
from engine.config import BOOKS
from engine.markets.catalogue import normalize_line
from engine.simulator.goals import MatchRates, Pair, book_view, market_table
from engine.simulator.quoting import BOOK_INDEX, BookQuotes, mix, quotable_outcomes, quote_book

EVENTS_PER_TOURNAMENT = 10
SOON_SHARE = 0.04  # events kicking off within two hours of the anchor
HORIZON_DAYS = 7

# Which tournaments a book carries, by tier, and the share of their events it then leaves out.
TOURNAMENT_COVERAGE = {
    "betpawa": {1: 1.0, 2: 0.97, 3: 0.88},
    "sportybet": {1: 1.0, 2: 1.0, 3: 0.99},
    "bet9ja": {1: 1.0, 2: 0.98, 3: 0.94},
}
EVENT_DROPOUT = {"betpawa": 0.03, "sportybet": 0.005, "bet9ja": 0.03}


@dataclass(frozen=True)
class SimTournament:
    key: str  # stable slug
    name: str
    country: str
    betpawa_id: str
    betpawa_region_id: str
    sportybet_id: str  # "sr:tournament:N"
    sportybet_category_id: str  # "sr:category:N"
    bet9ja_id: str  # Bet9ja group G key
    bet9ja_country_id: str  # Bet9ja SG key
    tier: int = 1  # 1 top competitions … 3 minor ones: decides market depth and coverage


@dataclass(frozen=True)
class SimEvent:
    sr_id: str  # 8-digit numeric string
    kickoff: datetime  # aware UTC, after the world's anchor
    tournament: SimTournament
    home: str
    away: str
    book_ids: dict[str, str] = field(hash=False)  # every book's id; ``books`` says who lists it
    books: frozenset[str]


# Countries and tournaments ---------------------------------------------------------------

_EUROPE = ("11:30", "12:00", "13:00", "13:30", "14:00", "15:00", "16:00", "16:30", "17:00", "17:30",
           "18:00", "18:45", "19:00", "19:45", "20:00")
_AMERICAS = ("16:00", "18:00", "20:00", "21:00", "22:30", "23:00", "00:00", "01:00")
_ASIA = ("03:00", "05:00", "06:00", "07:30", "09:00", "10:00", "11:00", "12:00")
_GULF = ("13:00", "14:00", "15:00", "16:00", "17:00", "18:00", "19:00")


@dataclass(frozen=True)
class _Country:
    name: str
    slots: tuple[str, ...]
    cities: tuple[str, ...]
    patterns: tuple[str, ...]
    famous: tuple[str, ...] = ()


_GENERIC = ("{} FC", "FC {}", "{} United", "{} City", "Sporting {}", "Dynamo {}", "{} Stars", "Real {}")

_COUNTRIES: tuple[_Country, ...] = (
    _Country("England", _EUROPE,
             ("Manchester", "Liverpool", "Leeds", "Bristol", "Sheffield", "Newcastle", "Birmingham",
              "Nottingham", "Derby", "Leicester", "Coventry", "Norwich", "Ipswich", "Plymouth", "Hull",
              "Blackburn", "Preston", "Stoke", "Reading", "Oxford", "Portsmouth", "Sunderland", "Bolton",
              "Wigan", "Barnsley", "Bradford", "Exeter", "Cambridge", "Luton", "Swindon"),
             ("{} United", "{} City", "{} Town", "{} Rovers", "{} Athletic", "{} FC", "{} Albion",
              "{} Wanderers", "{} County")),
    _Country("Spain", _EUROPE,
             ("Madrid", "Sevilla", "Valencia", "Bilbao", "Vigo", "Zaragoza", "Oviedo", "Gijón", "Cádiz",
              "Córdoba", "Almería", "Málaga", "Granada", "Huesca", "Leganés", "Alcorcón", "Mallorca",
              "Tenerife", "Elche", "Burgos", "Castellón", "Santander"),
             ("Real {}", "Atlético {}", "CD {}", "{} CF", "UD {}", "Deportivo {}", "SD {}", "Racing {}"),
             ("Atlético Madrid", "Real Betis", "Deportivo Alavés", "Cádiz CF", "Málaga CF")),
    _Country("Germany", _EUROPE,
             ("München", "Dortmund", "Köln", "Düsseldorf", "Nürnberg", "Fürth", "Bremen", "Hamburg",
              "Stuttgart", "Freiburg", "Mainz", "Augsburg", "Bochum", "Kiel", "Rostock", "Paderborn",
              "Karlsruhe", "Kaiserslautern", "Braunschweig", "Magdeburg", "Münster", "Osnabrück",
              "Saarbrücken", "Wiesbaden"),
             ("FC {}", "{} SV", "1. FC {}", "SV {}", "VfB {}", "VfL {}", "SC {}", "Eintracht {}"),
             ("Bayern München", "Borussia Dortmund", "Borussia Mönchengladbach", "1. FC Köln",
              "Fortuna Düsseldorf", "1. FC Nürnberg")),
    _Country("Italy", _EUROPE,
             ("Torino", "Genova", "Bologna", "Firenze", "Napoli", "Verona", "Udine", "Lecce", "Bari",
              "Palermo", "Parma", "Cagliari", "Empoli", "Como", "Venezia", "Brescia", "Modena", "Pisa",
              "Cremona", "Catanzaro", "Cesena", "Salerno"),
             ("{}", "AC {}", "US {}", "{} Calcio", "Hellas {}", "Virtus {}", "SS {}")),
    _Country("France", _EUROPE,
             ("Paris", "Marseille", "Lyon", "Lille", "Nantes", "Rennes", "Nice", "Lens", "Reims",
              "Strasbourg", "Brest", "Toulouse", "Montpellier", "Nîmes", "Orléans", "Caen", "Grenoble",
              "Amiens", "Bastia", "Troyes", "Annecy", "Rodez"),
             ("{} FC", "AS {}", "Olympique {}", "Stade {}", "RC {}", "FC {}", "US {}"),
             ("AS Saint-Étienne", "Nîmes Olympique")),
    _Country("Netherlands", _EUROPE,
             ("Amsterdam", "Rotterdam", "Eindhoven", "Utrecht", "Groningen", "Heerenveen", "Zwolle",
              "Tilburg", "Breda", "Almelo", "Nijmegen", "Deventer", "Sittard", "Waalwijk", "Emmen", "Volendam"),
             ("FC {}", "{} SC", "Sparta {}", "SC {}", "Go Ahead {}", "Fortuna {}")),
    _Country("Portugal", _EUROPE,
             ("Lisboa", "Porto", "Braga", "Guimarães", "Famalicão", "Arouca", "Chaves", "Estoril", "Faro",
              "Setúbal", "Vizela", "Barcelos", "Funchal", "Coimbra", "Leiria", "Tondela"),
             ("Sporting {}", "FC {}", "SC {}", "Vitória {}", "CD {}", "Académico {}"),
             ("Famalicão", "Vitória Guimarães", "Paços de Ferreira")),
    _Country("Belgium", _EUROPE,
             ("Brugge", "Gent", "Antwerpen", "Genk", "Mechelen", "Charleroi", "Leuven", "Liège", "Kortrijk",
              "Oostende", "Westerlo", "Eupen", "Lommel", "Beveren"),
             ("Club {}", "KAA {}", "Royal {}", "KV {}", "Standard {}", "Sporting {}")),
    _Country("Turkey", _GULF,
             ("İstanbul", "Ankara", "İzmir", "Trabzon", "Konya", "Kayseri", "Antalya", "Sivas", "Alanya",
              "Eskişehir", "Samsun", "Gaziantep", "Bursa", "Adana", "Rize", "Manisa"),
             ("{}spor", "{} FK", "{} Belediyespor", "{} BB"),
             ("Beşiktaş", "Fenerbahçe", "Galatasaray", "Göztepe", "Kasımpaşa", "Gençlerbirliği")),
    _Country("Scotland", _EUROPE,
             ("Glasgow", "Edinburgh", "Aberdeen", "Dundee", "Kilmarnock", "Motherwell", "Perth", "Paisley",
              "Dunfermline", "Inverness", "Falkirk", "Ayr", "Arbroath", "Airdrie", "Stirling", "Montrose"),
             ("{} FC", "{} United", "{} Athletic", "{} Rovers", "{} Thistle", "{} City")),
    _Country("Nigeria", _EUROPE,
             ("Kano", "Enugu", "Lagos", "Ibadan", "Abuja", "Kaduna", "Port Harcourt", "Aba", "Jos", "Ilorin",
              "Akure", "Uyo", "Lafia", "Katsina", "Bauchi", "Makurdi", "Owerri", "Benin", "Calabar", "Sokoto"),
             ("{} United", "{} Pillars", "{} Rangers", "{} Stars", "{} Warriors", "{} Tornadoes", "{} Queens")),
    _Country("Brazil", _AMERICAS,
             ("São Paulo", "Rio", "Belo Horizonte", "Porto Alegre", "Curitiba", "Salvador", "Recife",
              "Fortaleza", "Goiânia", "Florianópolis", "Criciúma", "Cuiabá", "Belém", "Natal", "Maceió",
              "Campinas", "Santos", "Juiz de Fora"),
             ("{} FC", "EC {}", "Atlético {}", "América {}", "Sport {}", "Clube {}"),
             ("Grêmio", "Goiás", "Avaí", "Vitória", "Ceará")),
    _Country("Argentina", _AMERICAS,
             ("Buenos Aires", "Rosario", "Córdoba", "La Plata", "Mendoza", "Tucumán", "Santa Fe", "Avellaneda",
              "Lanús", "Banfield", "Quilmes", "Tandil", "Mar del Plata", "San Juan"),
             ("Club {}", "Atlético {}", "Deportivo {}", "Sportivo {}", "{} Juniors", "Unión {}")),
    _Country("Mexico", _AMERICAS,
             ("Querétaro", "León", "Mazatlán", "Puebla", "Toluca", "Monterrey", "Guadalajara", "Tijuana",
              "Pachuca", "Juárez", "Morelia", "Celaya", "Oaxaca", "Tepatitlán"),
             ("Club {}", "{} FC", "Atlético {}", "Deportivo {}", "Real {}")),
)

# Countries with no team-name quirks of their own share the generic patterns.
_MINOR = {
    "Greece": (_EUROPE, ("Athina", "Thessaloniki", "Patra", "Larisa", "Volos", "Iraklio", "Tripoli", "Lamia",
                         "Chania", "Ioannina", "Kalamata", "Xanthi")),
    "Austria": (_EUROPE, ("Wien", "Salzburg", "Graz", "Linz", "Klagenfurt", "Innsbruck", "Altach", "Hartberg",
                          "Ried", "Wolfsberg", "Lustenau", "Steyr")),
    "Switzerland": (_EUROPE, ("Zürich", "Basel", "Bern", "Genève", "Luzern", "Lugano", "St. Gallen", "Sion",
                              "Thun", "Winterthur", "Aarau", "Yverdon")),
    "Denmark": (_EUROPE, ("København", "Brøndby", "Århus", "Aalborg", "Odense", "Randers", "Silkeborg",
                          "Viborg", "Horsens", "Vejle", "Esbjerg", "Lyngby")),
    "Norway": (_EUROPE, ("Bodø", "Tromsø", "Oslo", "Bergen", "Trondheim", "Molde", "Stavanger", "Kristiansand",
                         "Sarpsborg", "Haugesund", "Lillestrøm", "Strømsgodset")),
    "Sweden": (_EUROPE, ("Malmö", "Göteborg", "Norrköping", "Örebro", "Stockholm", "Helsingborg", "Kalmar",
                         "Halmstad", "Sundsvall", "Västerås", "Jönköping", "Värnamo")),
    "Poland": (_EUROPE, ("Łódź", "Kraków", "Gdańsk", "Poznań", "Białystok", "Warszawa", "Wrocław", "Szczecin",
                         "Lublin", "Radom", "Płock", "Zabrze")),
    "Czech Republic": (_EUROPE, ("Praha", "Plzeň", "Olomouc", "Ostrava", "Liberec", "Jablonec", "Zlín",
                                 "Teplice", "Karviná", "Pardubice", "Mladá Boleslav", "České Budějovice")),
    "Croatia": (_EUROPE, ("Zagreb", "Split", "Rijeka", "Osijek", "Varaždin", "Gorica", "Pula", "Šibenik",
                          "Zadar", "Dubrava")),
    "Romania": (_EUROPE, ("București", "Cluj", "Craiova", "Iași", "Constanța", "Galați", "Sibiu", "Arad",
                          "Botoșani", "Ploiești")),
    "Russia": (_EUROPE, ("Moskva", "Sankt-Peterburg", "Kazan", "Samara", "Rostov", "Krasnodar", "Sochi",
                         "Orenburg", "Makhachkala", "Nizhny Novgorod")),
    "USA": (_AMERICAS, ("Seattle", "Portland", "Austin", "Nashville", "Charlotte", "Columbus", "Cincinnati",
                        "Atlanta", "Orlando", "Denver", "Phoenix", "Sacramento")),
    "Japan": (_ASIA, ("Kashima", "Urawa", "Kawasaki", "Yokohama", "Nagoya", "Osaka", "Kobe", "Hiroshima",
                      "Sapporo", "Fukuoka", "Niigata", "Kyoto")),
    "South Korea": (_ASIA, ("Seoul", "Ulsan", "Jeonbuk", "Pohang", "Daegu", "Incheon", "Suwon", "Gwangju",
                            "Daejeon", "Gangwon")),
    "Saudi Arabia": (_GULF, ("Riyadh", "Jeddah", "Dammam", "Abha", "Taif", "Buraidah", "Khobar", "Al Khaleej",
                             "Damac", "Al Fayha")),
    "Egypt": (_GULF, ("Cairo", "Alexandria", "Ismailia", "Suez", "Port Said", "Mansoura", "Aswan", "Zamalek",
                      "Giza", "Tanta")),
    "South Africa": (_EUROPE, ("Johannesburg", "Pretoria", "Durban", "Cape Town", "Polokwane", "Bloemfontein",
                               "Soweto", "Rustenburg", "Mbombela", "Gqeberha")),
    "Ghana": (_EUROPE, ("Accra", "Kumasi", "Tamale", "Cape Coast", "Sunyani", "Obuasi", "Tema", "Dreams")),
    "Kenya": (_EUROPE, ("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret", "Thika", "Machakos", "Kakamega")),
    "Morocco": (_EUROPE, ("Casablanca", "Rabat", "Fès", "Marrakech", "Tanger", "Agadir", "Oujda", "Berkane")),
    "Australia": (_ASIA, ("Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide", "Wellington", "Newcastle",
                          "Macarthur", "Central Coast", "Western Sydney")),
    "China": (_ASIA, ("Shanghai", "Beijing", "Shandong", "Chengdu", "Wuhan", "Tianjin", "Changchun", "Dalian",
                      "Qingdao", "Henan")),
    "Iceland": (_EUROPE, ("Reykjavík", "Kópavogur", "Hafnarfjörður", "Akureyri", "Keflavík", "Garðabær")),
    "Finland": (_EUROPE, ("Helsinki", "Turku", "Tampere", "Kuopio", "Vaasa", "Oulu", "Lahti", "Seinäjoki")),
    "Ireland": (_EUROPE, ("Dublin", "Cork", "Derry", "Sligo", "Galway", "Waterford", "Drogheda", "Dundalk")),
    "Israel": (_GULF, ("Tel Aviv", "Haifa", "Be'er Sheva", "Jerusalem", "Netanya", "Ashdod", "Petah Tikva")),
    "Hungary": (_EUROPE, ("Budapest", "Debrecen", "Győr", "Székesfehérvár", "Paks", "Kecskemét", "Zalaegerszeg")),
    "Chile": (_AMERICAS, ("Santiago", "Valparaíso", "Concepción", "Antofagasta", "Temuco", "Iquique", "Talca")),
    "Colombia": (_AMERICAS, ("Bogotá", "Medellín", "Cali", "Barranquilla", "Manizales", "Pereira", "Cúcuta")),
    "Uruguay": (_AMERICAS, ("Montevideo", "Maldonado", "Rivera", "Colonia", "Florida", "Paysandú")),
    "Peru": (_AMERICAS, ("Lima", "Cusco", "Arequipa", "Trujillo", "Huancayo", "Chiclayo", "Piura")),
    "Ecuador": (_AMERICAS, ("Quito", "Guayaquil", "Cuenca", "Manta", "Ambato", "Loja")),
    "Qatar": (_GULF, ("Doha", "Al Rayyan", "Al Wakrah", "Al Khor", "Umm Salal", "Al Sadd")),
    "Algeria": (_EUROPE, ("Alger", "Oran", "Constantine", "Sétif", "Annaba", "Tlemcen", "Béjaïa")),
    "Tunisia": (_EUROPE, ("Tunis", "Sfax", "Sousse", "Monastir", "Bizerte", "Gabès", "Béja")),
    "Latvia": (_EUROPE, ("Rīga", "Liepāja", "Jelgava", "Daugavpils", "Ventspils", "Valmiera")),
    "Bulgaria": (_EUROPE, ("Sofia", "Plovdiv", "Varna", "Burgas", "Razgrad", "Stara Zagora", "Lovech")),
    "Slovakia": (_EUROPE, ("Bratislava", "Trnava", "Žilina", "Košice", "Nitra", "Trenčín", "Ružomberok")),
    "Cyprus": (_EUROPE, ("Nicosia", "Limassol", "Larnaca", "Paphos", "Famagusta", "Paralimni")),
    "Serbia": (_EUROPE, ("Beograd", "Novi Sad", "Niš", "Kragujevac", "Subotica", "Čačak", "Novi Pazar")),
    "Ukraine": (_EUROPE, ("Kyiv", "Lviv", "Kharkiv", "Dnipro", "Odesa", "Poltava", "Zhytomyr", "Oleksandriya")),
    "Ivory Coast": (_EUROPE, ("Abidjan", "Bouaké", "San-Pédro", "Yamoussoukro", "Korhogo", "Daloa")),
    "Tanzania": (_EUROPE, ("Dar es Salaam", "Arusha", "Mwanza", "Dodoma", "Mbeya", "Tanga")),
    "India": (_ASIA, ("Mumbai", "Kolkata", "Bengaluru", "Chennai", "Goa", "Hyderabad", "Kerala", "Odisha")),
    "Costa Rica": (_AMERICAS, ("San José", "Alajuela", "Heredia", "Cartago", "Puntarenas", "Liberia")),
}

_NATIONS = ("Nigeria", "Ghana", "Côte d'Ivoire", "Senegal", "Cameroon", "Egypt", "Morocco", "Algeria", "Tunisia",
            "Mali", "Burkina Faso", "Guinea", "Cabo Verde", "South Africa", "Zambia", "Angola", "Benin", "Togo",
            "São Tomé and Príncipe", "Curaçao", "Türkiye", "Norway", "Iceland", "Wales")
INTERNATIONAL = "International"
INTERNATIONAL_CLUBS = "International Clubs"

# (country, tournament, tier); the first N of the list (by tier, then this order) make a world.
_TOURNAMENTS: tuple[tuple[str, str, int], ...] = (
    ("England", "Premier League", 1), ("Spain", "LaLiga", 1), ("Germany", "Bundesliga", 1),
    ("Italy", "Serie A", 1), ("France", "Ligue 1", 1), (INTERNATIONAL_CLUBS, "UEFA Champions League", 1),
    (INTERNATIONAL_CLUBS, "UEFA Europa League", 1), ("England", "Championship", 1),
    ("Netherlands", "Eredivisie", 1), ("Portugal", "Primeira Liga", 1), ("Turkey", "Süper Lig", 1),
    ("Germany", "2. Bundesliga", 1), ("Belgium", "Pro League", 1), ("Scotland", "Premiership", 1),
    ("Brazil", "Série A", 1), ("Argentina", "Liga Profesional", 1),
    ("Nigeria", "NPFL", 2), ("Spain", "LaLiga 2", 2), ("Italy", "Serie B", 2), ("France", "Ligue 2", 2),
    ("England", "League One", 2), ("England", "League Two", 2), ("England", "FA Cup", 2),
    (INTERNATIONAL_CLUBS, "UEFA Conference League", 2), (INTERNATIONAL_CLUBS, "CAF Champions League", 2),
    (INTERNATIONAL_CLUBS, "Copa Libertadores", 2), (INTERNATIONAL, "World Cup Qualification, Africa", 2),
    ("Germany", "3. Liga", 2), ("Germany", "DFB-Pokal", 2), ("Spain", "Copa del Rey", 2),
    ("Italy", "Coppa Italia", 2), ("France", "Coupe de France", 2), ("Netherlands", "Eerste Divisie", 2),
    ("Portugal", "Liga Portugal 2", 2), ("Turkey", "1. Lig", 2), ("Scotland", "Championship", 2),
    ("Greece", "Super League", 2), ("Austria", "Bundesliga", 2), ("Switzerland", "Super League", 2),
    ("Denmark", "Superliga", 2), ("Norway", "Eliteserien", 2), ("Sweden", "Allsvenskan", 2),
    ("Poland", "Ekstraklasa", 2), ("Czech Republic", "1. Liga", 2), ("Croatia", "HNL", 2),
    ("Romania", "Liga I", 2), ("Russia", "Premier League", 2), ("Brazil", "Série B", 2),
    ("Brazil", "Copa do Brasil", 2), ("Mexico", "Liga MX", 2), ("USA", "MLS", 2), ("Japan", "J1 League", 2),
    ("South Korea", "K League 1", 2), ("Saudi Arabia", "Pro League", 2), ("Egypt", "Premier League", 2),
    ("South Africa", "Premiership", 2), ("Australia", "A-League", 2), ("England", "EFL Cup", 2),
    ("England", "National League", 3), ("England", "Premier League 2", 3), ("England", "Women's Super League", 3),
    ("England", "EFL Trophy", 3), ("Spain", "Primera Federación", 3), ("Spain", "Liga F", 3),
    ("Spain", "Segunda Federación", 3), ("Germany", "Regionalliga West", 3), ("Germany", "Regionalliga Nord", 3),
    ("Germany", "Regionalliga Bayern", 3), ("Germany", "Frauen-Bundesliga", 3), ("Italy", "Serie C", 3),
    ("Italy", "Primavera 1", 3), ("Italy", "Serie A Women", 3), ("France", "National", 3),
    ("France", "National 2", 3), ("France", "Première Ligue", 3), ("Netherlands", "KNVB Beker", 3),
    ("Netherlands", "Vrouwen Eredivisie", 3), ("Portugal", "Taça de Portugal", 3), ("Portugal", "Liga 3", 3),
    ("Belgium", "Challenger Pro League", 3), ("Belgium", "Belgian Cup", 3), ("Turkey", "Türkiye Kupası", 3),
    ("Scotland", "League One", 3), ("Scotland", "League Two", 3), ("Nigeria", "Nigeria FA Cup", 3),
    ("Nigeria", "NNL", 3), ("Nigeria", "NWFL Premiership", 3), (INTERNATIONAL_CLUBS, "CAF Confederation Cup", 3),
    (INTERNATIONAL_CLUBS, "Copa Sudamericana", 3), (INTERNATIONAL_CLUBS, "AFC Champions League", 3),
    (INTERNATIONAL_CLUBS, "Club Friendlies", 3), (INTERNATIONAL_CLUBS, "UEFA Youth League", 3),
    (INTERNATIONAL, "Africa Cup of Nations Qualification", 3), (INTERNATIONAL, "International Friendlies", 3),
    ("Greece", "Super League 2", 3), ("Austria", "2. Liga", 3), ("Switzerland", "Challenge League", 3),
    ("Denmark", "1st Division", 3), ("Norway", "OBOS-ligaen", 3), ("Sweden", "Superettan", 3),
    ("Poland", "I Liga", 3), ("Czech Republic", "FNL", 3), ("Croatia", "Prva NL", 3), ("Romania", "Liga II", 3),
    ("Russia", "First League", 3), ("Brazil", "Série C", 3), ("Argentina", "Primera Nacional", 3),
    ("Argentina", "Copa Argentina", 3), ("Mexico", "Liga de Expansión MX", 3), ("USA", "USL Championship", 3),
    ("Japan", "J2 League", 3), ("South Korea", "K League 2", 3), ("Saudi Arabia", "First Division", 3),
    ("South Africa", "Championship", 3), ("China", "Super League", 3), ("Morocco", "Botola Pro", 3),
    ("Ghana", "Premier League", 3), ("Kenya", "Premier League", 3), ("Iceland", "Besta deild", 3),
    ("Finland", "Veikkausliiga", 3), ("Ireland", "Premier Division", 3), ("Israel", "Premier League", 3),
    ("Hungary", "NB I", 3), ("Chile", "Primera División", 3), ("Colombia", "Primera A", 3),
    ("Uruguay", "Primera División", 3), ("Peru", "Liga 1", 3), ("Ecuador", "LigaPro", 3),
    ("Qatar", "Stars League", 3), ("Algeria", "Ligue 1", 3), ("Tunisia", "Ligue 1", 3),
    ("Latvia", "Virslīga", 3), ("Bulgaria", "First League", 3), ("Slovakia", "Niké Liga", 3),
    ("Cyprus", "First Division", 3), ("Serbia", "Super Liga", 3), ("Ukraine", "Premier League", 3),
    ("Ivory Coast", "Ligue 1", 3), ("Tanzania", "Premier League", 3), ("India", "Super League", 3),
    ("Costa Rica", "Primera División", 3), ("Greece", "Greek Cup", 3), ("Austria", "ÖFB-Cup", 3),
    ("Denmark", "Landspokal Cup", 3), ("Sweden", "Svenska Cupen", 3), ("Poland", "Puchar Polski", 3),
    ("Czech Republic", "MOL Cup", 3), ("Japan", "Emperor's Cup", 3), ("USA", "US Open Cup", 3),
    ("Mexico", "Liga MX Femenil", 3), ("Brazil", "Brasileiro Women", 3), ("Australia", "A-League Women", 3),
    ("Egypt", "Egypt Cup", 3), ("Saudi Arabia", "King's Cup", 3), ("Scotland", "Scottish Cup", 3),
    ("Russia", "Russian Cup", 3), ("Romania", "Cupa României", 3), ("Croatia", "Croatian Cup", 3),
)

_SECOND_TEAMS = {"Premier League 2": " U21", "Primavera 1": " U19", "UEFA Youth League": " U19"}
_WOMEN = ("Women", "Liga F", "Frauen", "Femenil", "Première Ligue", "Vrouwen", "NWFL")
_CUP_WORDS = ("Cup", "Pokal", "Copa", "Coppa", "Coupe", "Beker", "Taça", "Kupası", "Cupen", "Puchar",
              "Trophy", "Friendlies", "Cupa")


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _country(name: str) -> _Country:
    for c in _COUNTRIES:
        if c.name == name:
            return c
    slots, cities = _MINOR[name]
    return _Country(name, slots, cities, _GENERIC)


def _master() -> list[tuple[str, str, int]]:
    return sorted(_TOURNAMENTS, key=lambda t: t[2])  # stable: keeps the list's order within a tier


def _tournament(index: int, country: str, name: str, tier: int, countries: list[str]) -> SimTournament:
    """Ids depend only on the tournament's place in the master list, so they are the same in
    every world; numbers are in the ranges the real books use (reference §11)."""
    c = countries.index(country)
    return SimTournament(
        key=_slug(f"{country} {name}"), name=name, country=country,
        betpawa_id=str(10_000 + 37 * index), betpawa_region_id=str(300 + 3 * c),
        sportybet_id=f"sr:tournament:{20_000 + 11 * index}", sportybet_category_id=f"sr:category:{800 + c}",
        bet9ja_id=str(170_000 + 59 * index), bet9ja_country_id=str(1_000 + 7 * c),
        tier=tier,
    )


# Teams -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Team:
    attack: float
    defence: float


class _Clubs:
    """Club names per country, unique within the country, with strengths shared by every
    tournament a club plays in (league, cup, continental)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.names: dict[str, list[str]] = {}
        self.teams: dict[str, _Team] = {}

    def _new(self, country: _Country) -> str:
        taken = self.names.setdefault(country.name, [])
        for famous in country.famous:
            if famous not in taken:
                return famous
        for _ in range(200):
            name = self.rng.choice(country.patterns).format(self.rng.choice(country.cities))
            if name not in taken:
                return name
        return f"{self.rng.choice(country.cities)} {len(taken) + 1}"

    def strength(self, name: str, spread: float = 0.22) -> _Team:
        if name not in self.teams:
            self.teams[name] = _Team(self.rng.gauss(0.0, spread), self.rng.gauss(0.0, spread))
        return self.teams[name]

    def league(self, country: _Country, n: int) -> list[str]:
        out = []
        for _ in range(n):
            name = self._new(country)
            self.names[country.name].append(name)
            out.append(name)
        return out

    def existing(self, country: _Country, n: int) -> list[str]:
        known = self.names.get(country.name, [])
        picked = self.rng.sample(known, min(n, len(known)))
        return picked + self.league(country, n - len(picked))


def _teams_for(clubs: _Clubs, country: str, name: str, n: int, rng: random.Random) -> list[str]:
    if country == INTERNATIONAL:
        return rng.sample(_NATIONS, min(n, len(_NATIONS)))
    if country == INTERNATIONAL_CLUBS:
        picked: list[str] = []
        while len(picked) < n:
            club = clubs.existing(rng.choice(_COUNTRIES), 1)[0]
            if club not in picked:
                picked.append(club)
        return picked
    spec = _country(country)
    suffix = _SECOND_TEAMS.get(name) or (" Women" if any(w in name for w in _WOMEN) else "")
    if suffix:
        return [t + suffix for t in clubs.existing(spec, n)]
    if any(w in name for w in _CUP_WORDS):
        return clubs.existing(spec, n)
    return clubs.league(spec, n)


# The world ---------------------------------------------------------------------------------

class World:
    """One seeded world. ``quotes`` is the ground truth every parser round-trip is held to."""

    def __init__(self, seed: int, anchor: datetime, tournaments: list[SimTournament], events: list[SimEvent],
                 rates: dict[str, MatchRates]):
        self.seed = seed
        self.anchor = anchor
        self.tournaments = tournaments
        self.events = events
        self._by_id = {e.sr_id: e for e in events}
        self._rates = rates
        self._quotes: dict[tuple[str, str], BookQuotes] = {}

    def event(self, sr_id: str) -> SimEvent:
        return self._by_id[str(sr_id)]

    def listed(self, book: str) -> list[SimEvent]:
        """The events ``book`` lists, by kickoff."""
        return [e for e in self.events if book in e.books]

    def rates(self, sr_id: str) -> MatchRates:
        return self._rates[str(sr_id)]

    def _book_quotes(self, book: str, sr_id: str) -> BookQuotes | None:
        found = self._quotes.get((book, sr_id))
        if found is not None:
            return found
        event = self.event(sr_id)
        if book not in event.books:
            return None
        table = market_table(self._rates[event.sr_id])
        for b in event.books:
            self._quotes[(b, event.sr_id)] = quote_book(
                b, table, tier=event.tournament.tier, key=mix(self.seed, BOOK_INDEX[b], int(event.sr_id)))
        return self._quotes[(book, event.sr_id)]

    def quotes(self, book: str, sr_id: str, epoch: int = 0) -> list[Price]:
        """The canonical prices ``book`` quotes for the event at drift epoch ``epoch`` ([] if it
        does not list the event)."""
        if book not in BOOKS:
            raise ValueError(f"unknown book {book!r}")
        if epoch < 0:
            raise ValueError("epoch must be >= 0")
        bq = self._book_quotes(book, str(sr_id))
        return [] if bq is None else bq.prices(epoch)

    def changed_prices(self, book: str, sr_id: str, epoch: int) -> set[tuple[str, float | None, str]]:
        """(market, line, outcome) keys whose odds or availability differ from ``epoch - 1``."""
        bq = self._book_quotes(book, str(sr_id))
        return set() if bq is None else bq.changed(epoch)

    def true_probabilities(self, sr_id: str, book: str | None = None) -> dict[tuple[str, float | None, str], float]:
        """(market, line, outcome) -> true probability, for every modelled market and line.

        Asian handicaps and no-bet markets give push-adjusted probabilities. Correct score's
        ``other`` is what the reference book's (BetPawa's) list leaves out; pass ``book`` for the
        outcomes that book can express, with ``other`` relative to its own list.
        """
        out: dict[tuple[str, float | None, str], float] = {}
        for (market, line), probs in market_table(self.rates(sr_id)).items():
            if book is not None:
                outcomes = quotable_outcomes(book, market)
                if not outcomes:
                    continue
                probs = book_view(market, probs, outcomes)
            line = normalize_line(line)
            for outcome, p in probs.items():
                out[(market, line, outcome)] = p
        return out

    def warm(self) -> None:
        """Compute every event's quotes now (a full-size world takes several seconds)."""
        for e in self.events:
            for book in e.books:
                self._book_quotes(book, e.sr_id)


def _kickoff_days(rng: random.Random) -> list[int]:
    return sorted(rng.sample(range(HORIZON_DAYS + 1), rng.randint(1, 3)))


def _kickoff(rng: random.Random, anchor: datetime, slots: tuple[str, ...], days: list[int], soon: bool) -> datetime:
    if soon:
        return anchor.replace(second=0, microsecond=0) + timedelta(minutes=5 * rng.randint(4, 23))
    midnight = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    earliest, latest = anchor + timedelta(hours=2), anchor + timedelta(days=HORIZON_DAYS)
    for attempt in range(50):
        day = rng.choice(days) if attempt < 10 and rng.random() < 0.8 else rng.randint(0, HORIZON_DAYS)
        hh, mm = (int(x) for x in rng.choice(slots).split(":"))
        start = midnight + timedelta(days=day, hours=hh, minutes=mm)
        if earliest < start <= latest:
            return start
    return earliest + timedelta(minutes=15 * rng.randint(1, 4 * 24 * HORIZON_DAYS - 12))


def _match_rates(rng: random.Random, home: _Team, away: _Team, goals: float, home_edge: float,
                 cards: float) -> MatchRates:
    lam_h = goals * math.exp(home_edge + home.attack - away.defence + rng.gauss(0, 0.05))
    lam_a = goals * math.exp(away.attack - home.defence + rng.gauss(0, 0.05))
    first = rng.uniform(0.42, 0.47)
    corners_h = 5.2 * math.exp(0.5 * (home.attack - away.defence) + rng.gauss(0, 0.1))
    corners_a = 4.5 * math.exp(0.5 * (away.attack - home.defence) + rng.gauss(0, 0.1))
    cards_h = cards * math.exp(-0.08 + 0.3 * (away.attack - home.attack) + rng.gauss(0, 0.1))
    cards_a = cards * math.exp(0.06 + 0.3 * (home.attack - away.attack) + rng.gauss(0, 0.1))
    return MatchRates(
        goals_1h=Pair(lam_h * first, lam_a * first),
        goals_2h=Pair(lam_h * (1 - first), lam_a * (1 - first)),
        corners_1h=Pair(corners_h * 0.47, corners_a * 0.47),
        corners_2h=Pair(corners_h * 0.53, corners_a * 0.53),
        cards_1h=Pair(cards_h * 0.4, cards_a * 0.4),
        cards_2h=Pair(cards_h * 0.6, cards_a * 0.6),
        reds=Pair(0.045 * cards_h, 0.05 * cards_a),
    )


def build_world(seed: int = 1, events: int = 300, anchor: datetime | None = None) -> World:
    """Same (seed, events, anchor) → the identical world. ``anchor`` defaults to now, rounded
    down to the minute; every kickoff is after it, over the next week, a few within 2 hours."""
    if events < 1:
        raise ValueError("a world needs at least one event")
    if anchor is None:
        anchor = datetime.now(UTC).replace(second=0, microsecond=0)
    elif anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    anchor = anchor.astimezone(UTC)
    rng = random.Random(mix(seed, 0x5EED))

    master = _master()
    countries = list(dict.fromkeys(c for c, _, _ in master))
    count = max(1, min(len(master), round(events / EVENTS_PER_TOURNAMENT)))
    chosen = [_tournament(i, *master[i], countries) for i in range(count)]

    weights = [{1: 1.4, 2: 1.0, 3: 0.75}[t.tier] * rng.uniform(0.6, 1.4) for t in chosen]
    per_tournament = [1] * count if events >= count else [0] * count
    for i in rng.choices(range(count), weights=weights, k=max(0, events - sum(per_tournament))):
        per_tournament[i] += 1

    clubs = _Clubs(rng)
    order = sorted(range(count), key=lambda i: (chosen[i].country in (INTERNATIONAL, INTERNATIONAL_CLUBS),
                                                any(w in chosen[i].name for w in _CUP_WORDS + _WOMEN), i))
    fixtures: list[tuple[SimTournament, str, str]] = []
    for i in order:
        t, n = chosen[i], per_tournament[i]
        if n == 0:
            continue
        size = max(2, min(20, 2 * n)) if t.country != INTERNATIONAL else min(len(_NATIONS), max(2, 2 * n))
        teams = _teams_for(clubs, t.country, t.name, size, rng)
        for r in range(n):
            if r % (len(teams) // 2) == 0:
                rng.shuffle(teams)
            k = r % (len(teams) // 2)
            fixtures.append((t, teams[2 * k], teams[2 * k + 1]))

    sr_ids = rng.sample(range(40_000_000, 70_000_000), len(fixtures))
    bp_ids = rng.sample(range(31_000_000, 34_000_000), len(fixtures))
    b9_ids = rng.sample(range(700_000_000, 720_000_000), len(fixtures))
    soon = set(rng.sample(range(len(fixtures)), min(len(fixtures), max(1, round(SOON_SHARE * len(fixtures))))))
    league = {t.key: (rng.uniform(1.15, 1.5), rng.uniform(0.12, 0.32), rng.uniform(1.6, 2.6)) for t in chosen}
    carried = {(b, t.key): rng.random() < TOURNAMENT_COVERAGE[b][t.tier] for b in BOOKS for t in chosen}
    days = {t.key: _kickoff_days(rng) for t in chosen}

    built: list[SimEvent] = []
    rates: dict[str, MatchRates] = {}
    for n, (t, home, away) in enumerate(fixtures):
        sr = str(sr_ids[n])
        slots = _EUROPE if t.country in (INTERNATIONAL, INTERNATIONAL_CLUBS) else _country(t.country).slots
        kickoff = _kickoff(rng, anchor, slots, days[t.key], n in soon)
        books = frozenset(b for b in BOOKS if carried[(b, t.key)] and rng.random() >= EVENT_DROPOUT[b])
        if not books:
            books = frozenset({"sportybet"})
        goals, edge, cards = league[t.key]
        spread = 0.3 if t.tier == 3 else 0.22
        rates[sr] = _match_rates(rng, clubs.strength(home, spread), clubs.strength(away, spread), goals, edge, cards)
        built.append(SimEvent(
            sr_id=sr, kickoff=kickoff, tournament=t, home=home, away=away,
            book_ids={"betpawa": str(bp_ids[n]), "sportybet": f"sr:match:{sr}", "bet9ja": str(b9_ids[n])},
            books=books,
        ))
    built.sort(key=lambda e: (e.kickoff, e.sr_id))
    return World(seed=seed, anchor=anchor, tournaments=chosen, events=built, rates=rates)
