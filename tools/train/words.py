"""About 1,000 common English words by part of speech, for tools/train/sentences.py.

Chosen by the speechllm team from everyday English; irregular verb forms are written out. Only
lower-case words that espeak-ng reads the way they are written.
"""

NOUNS = """
time year people way day man woman child children world life hand part place case week company
system program question work government number night point home water room mother area money story
fact month lot right study book eye job word business issue side kind head house service friend
father power hour game line end member law car city community name president team minute idea kid
body information back parent face others level office door health person art war history party
result change morning reason research girl guy moment air teacher force education foot boy age
policy music market sense nation plan college interest death experience effect class control care
field development role effort rate heart drug show leader light voice wife police mind price report
decision son view relationship town road arm difference value building action model season society
tax director position player record paper space ground form event official matter center couple site
project activity star table need court oil situation cost industry figure street image phone data
picture practice piece land product doctor wall patient worker news test movie north love support
technology step baby computer type attention film tree source organization hair window evidence
population truth song bed dog cat bird fish horse river sea lake mountain forest garden flower field
island beach sky sun moon rain snow wind storm weather summer winter spring autumn train bus plane
boat ship bike ticket station airport hotel restaurant kitchen bathroom chair desk box bag bottle cup
glass plate knife fork spoon bread butter cheese milk coffee tea sugar salt egg apple orange banana
lemon potato tomato rice soup cake dinner lunch breakfast meal shop store bank hospital school church
library museum park bridge farm village country letter message email note page pen pencil map key
clock watch camera radio television screen keyboard button light lamp fire shirt shoe hat coat dress
jacket pocket ring gift card box corner floor roof stairs garage yard gate fence stone rock sand
glass metal wood gold silver color red blue green yellow black white brown doctor nurse driver pilot
farmer cook singer artist writer student lawyer engineer manager neighbor brother sister uncle aunt
cousin husband daughter grandmother grandfather friend guest stranger king queen prince captain
soldier animal cow sheep pig chicken duck mouse rabbit bear lion tiger monkey elephant snake
""".split()

VERBS = [
    # base, third person, past
    ("be", "is", "was"), ("have", "has", "had"), ("do", "does", "did"), ("say", "says", "said"),
    ("go", "goes", "went"), ("get", "gets", "got"), ("make", "makes", "made"),
    ("know", "knows", "knew"), ("think", "thinks", "thought"), ("take", "takes", "took"),
    ("see", "sees", "saw"), ("come", "comes", "came"), ("want", "wants", "wanted"),
    ("look", "looks", "looked"), ("use", "uses", "used"), ("find", "finds", "found"),
    ("give", "gives", "gave"), ("tell", "tells", "told"), ("work", "works", "worked"),
    ("call", "calls", "called"), ("try", "tries", "tried"), ("ask", "asks", "asked"),
    ("need", "needs", "needed"), ("feel", "feels", "felt"), ("leave", "leaves", "left"),
    ("put", "puts", "put"), ("keep", "keeps", "kept"), ("let", "lets", "let"),
    ("begin", "begins", "began"), ("help", "helps", "helped"), ("talk", "talks", "talked"),
    ("turn", "turns", "turned"), ("start", "starts", "started"), ("show", "shows", "showed"),
    ("hear", "hears", "heard"), ("play", "plays", "played"), ("run", "runs", "ran"),
    ("move", "moves", "moved"), ("like", "likes", "liked"), ("live", "lives", "lived"),
    ("believe", "believes", "believed"), ("hold", "holds", "held"), ("bring", "brings", "brought"),
    ("write", "writes", "wrote"), ("sit", "sits", "sat"), ("stand", "stands", "stood"),
    ("lose", "loses", "lost"), ("pay", "pays", "paid"), ("meet", "meets", "met"),
    ("learn", "learns", "learned"), ("change", "changes", "changed"), ("lead", "leads", "led"),
    ("understand", "understands", "understood"), ("watch", "watches", "watched"),
    ("follow", "follows", "followed"), ("stop", "stops", "stopped"), ("create", "creates", "created"),
    ("speak", "speaks", "spoke"), ("read", "reads", "read"), ("spend", "spends", "spent"),
    ("grow", "grows", "grew"), ("open", "opens", "opened"), ("walk", "walks", "walked"),
    ("win", "wins", "won"), ("offer", "offers", "offered"), ("remember", "remembers", "remembered"),
    ("love", "loves", "loved"), ("consider", "considers", "considered"),
    ("appear", "appears", "appeared"), ("buy", "buys", "bought"), ("wait", "waits", "waited"),
    ("serve", "serves", "served"), ("send", "sends", "sent"), ("build", "builds", "built"),
    ("stay", "stays", "stayed"), ("fall", "falls", "fell"), ("cut", "cuts", "cut"),
    ("reach", "reaches", "reached"), ("kill", "kills", "killed"), ("raise", "raises", "raised"),
    ("pass", "passes", "passed"), ("sell", "sells", "sold"), ("decide", "decides", "decided"),
    ("return", "returns", "returned"), ("explain", "explains", "explained"),
    ("hope", "hopes", "hoped"), ("carry", "carries", "carried"), ("drive", "drives", "drove"),
    ("break", "breaks", "broke"), ("eat", "eats", "ate"), ("drink", "drinks", "drank"),
    ("sleep", "sleeps", "slept"), ("cook", "cooks", "cooked"), ("clean", "cleans", "cleaned"),
    ("wash", "washes", "washed"), ("fix", "fixes", "fixed"), ("paint", "paints", "painted"),
    ("sing", "sings", "sang"), ("dance", "dances", "danced"), ("swim", "swims", "swam"),
    ("fly", "flies", "flew"), ("throw", "throws", "threw"), ("catch", "catches", "caught"),
    ("teach", "teaches", "taught"), ("forget", "forgets", "forgot"), ("close", "closes", "closed"),
    ("finish", "finishes", "finished"), ("visit", "visits", "visited"), ("check", "checks", "checked"),
    ("miss", "misses", "missed"), ("carry", "carries", "carried"), ("push", "pushes", "pushed"),
    ("pull", "pulls", "pulled"), ("fill", "fills", "filled"), ("plan", "plans", "planned"),
    ("order", "orders", "ordered"), ("answer", "answers", "answered"), ("share", "shares", "shared"),
    ("save", "saves", "saved"), ("find", "finds", "found"), ("choose", "chooses", "chose"),
    ("join", "joins", "joined"), ("thank", "thanks", "thanked"), ("count", "counts", "counted"),
    ("draw", "draws", "drew"), ("hide", "hides", "hid"), ("climb", "climbs", "climbed"),
]

ADJECTIVES = """
good new first last long great little own other old right big high different small large next early
young important few public bad same able free sure clear full special easy hard strong whole real
best better true late hot cold warm cool dark bright light heavy quiet loud happy sad angry tired
hungry busy ready simple short tall fast slow clean dirty empty rich poor cheap expensive safe
dangerous beautiful pretty nice kind friendly funny strange quick wide deep soft fresh sweet
green blue red yellow black white brown round flat sharp wet dry smart careful lucky famous
""".split()

ADVERBS = """
now then here there today tomorrow yesterday always never often sometimes soon again already still
together early later quickly slowly carefully quietly really very almost only
""".split()

PLACES = """
home work school office park station airport hotel beach city village market bank hospital library
museum garden kitchen river lake forest farm church store restaurant bridge
""".split()

PREPOSITIONS = "in on at near behind under over into from with without for to by after before".split()

DETERMINERS = "the a my your his her our their this that every one some".split()

PRONOUNS = [("i", "am", "was"), ("you", "are", "were"), ("he", "is", "was"), ("she", "is", "was"),
            ("we", "are", "were"), ("they", "are", "were")]

NAMES = """
john mary david sarah michael anna james emma peter lucy paul kate tom alice robert helen daniel
laura mark susan
""".split()

MONTHS = ("january february march april may june july august september october november "
          "december").split()

WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
