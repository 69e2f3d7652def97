// zkwiki web app: syntax highlighting of fenced code blocks (`<pre><code class="language-x">`).
//
// It works on the page's DOM only: a block's text is split into tokens and put back as text
// nodes and `<span class="hl-…">` elements, never parsed as HTML, so a block shows exactly what
// was written whatever it contains. One small tokenizer serves every language: comments,
// strings, numbers, keywords, and keys for data formats. A language it does not know, or a
// block over MAX_CHARS, stays plain. Loaded by pages.js only when a page has a fenced block.

const MAX_CHARS = 200_000;

/** Keywords by language family. */
const KEYWORDS = {
  rust: 'as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while',
  js: 'async await break case catch class const continue default delete do else export extends false finally for from function if import in instanceof let new null of return static super switch this throw true try typeof undefined var void while yield interface type enum implements',
  python: 'and as assert async await break class continue def del elif else except False finally for from global if import in is lambda None nonlocal not or pass raise return True try while with yield',
  sh: 'case do done elif else esac exit export fi for function if in local return then until while',
  go: 'break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var nil true false',
  c: 'auto break case char class const continue default delete do double else enum extern false float for goto if int long namespace new nullptr private protected public register return short signed sizeof static struct switch template this true typedef typename union unsigned using virtual void volatile while bool',
  java: 'abstract boolean break byte case catch char class const continue default do double else enum extends final finally float for fun if implements import instanceof int interface long new null package private protected public return short static super switch this throw throws true false try val var void while',
  sql: 'all alter and as asc begin by commit create delete desc distinct drop exists from group having in index inner insert into is join key left like limit not null on or order outer primary references right rollback select set table union update values where with',
  json: 'true false null',
  yaml: 'true false null yes no on off',
  toml: 'true false',
};

const ALIASES = {
  rs: 'rust', javascript: 'js', mjs: 'js', cjs: 'js', ts: 'js', typescript: 'js', jsx: 'js', tsx: 'js',
  py: 'python', python3: 'python', bash: 'sh', shell: 'sh', zsh: 'sh', console: 'sh', golang: 'go',
  h: 'c', cpp: 'c', 'c++': 'c', cc: 'c', hpp: 'c', cs: 'java', csharp: 'java', kotlin: 'java',
  kt: 'java', yml: 'yaml', psql: 'sql', postgresql: 'sql', postgres: 'sql', sqlite: 'sql', jsonc: 'json',
};

/** The line-comment marker of each family (none for JSON). */
const LINE_COMMENT = { rust: '//', js: '//', go: '//', c: '//', java: '//', python: '#', sh: '#', yaml: '#', toml: '#', sql: '--' };
/** Families with `/* … *\/` comments. */
const BLOCK_COMMENT = new Set(['rust', 'js', 'go', 'c', 'java', 'sql']);
/** Families whose `'…'` is a string (in Rust it is a character or a lifetime: closed or plain). */
const SINGLE_QUOTED = new Set(['js', 'python', 'sh', 'sql', 'yaml', 'toml', 'c', 'java', 'go']);
/** Families with `` `…` `` strings. */
const BACKTICK = new Set(['js', 'sh', 'go']);

/** The end of the whole text (`$` is the end of a line here: the regex is multiline). */
const END = '(?![\\s\\S])';

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The tokenizer of a family: one regex, each alternative a named group. */
function tokenizerOf(lang) {
  const parts = [];
  if (BLOCK_COMMENT.has(lang)) parts.push(`(?<com>/\\*[\\s\\S]*?(?:\\*/|${END}))`);
  if (LINE_COMMENT[lang]) parts.push(`(?<line>${escape(LINE_COMMENT[lang])}[^\\n]*)`);
  if (lang === 'json') parts.push('(?<key>"(?:[^"\\\\\\n]|\\\\.)*"(?=\\s*:))');
  if (lang === 'yaml') parts.push('(?<key>(?<=^[ \\t-]*)[\\w.$-]+(?=:(?:\\s|$)))');
  if (lang === 'toml') parts.push('(?<key>(?<=^[ \\t]*)(?:\\[[^\\]\\n]*\\]|[\\w.-]+(?=\\s*=)))');
  if (lang === 'python') parts.push(`(?<str>"""[\\s\\S]*?(?:"""|${END})|'''[\\s\\S]*?(?:'''|${END}))`);
  parts.push('(?<str>"(?:[^"\\\\\\n]|\\\\.)*"?)');
  if (SINGLE_QUOTED.has(lang)) parts.push("(?<str>'(?:[^'\\\\\\n]|\\\\.)*'?)");
  if (lang === 'rust') parts.push("(?<str>'(?:[^'\\\\\\n]|\\\\.[^'\\n]*)')");
  if (BACKTICK.has(lang)) parts.push('(?<str>`(?:[^`\\\\]|\\\\.)*`?)');
  parts.push('(?<num>\\b(?:0[xX][0-9a-fA-F_]+|\\d[\\d_]*(?:\\.\\d[\\d_]*)?(?:[eE][+-]?\\d+)?)[A-Za-z0-9_]*)');
  parts.push('(?<word>[A-Za-z_][A-Za-z0-9_]*)');
  // Group names repeat across alternatives, which a RegExp forbids: number them.
  let n = 0;
  const source = parts.join('|').replace(/\(\?<(\w+)>/g, (_, name) => `(?<${name}${n++}>`);
  const words = new Set(KEYWORDS[lang].split(' '));
  return { re: new RegExp(source, 'gm'), words, caseless: lang === 'sql' };
}

const tokenizers = new Map();

/** The tokens of `text` as a fragment of text nodes and spans. */
export function highlightText(text, lang) {
  if (!tokenizers.has(lang)) tokenizers.set(lang, tokenizerOf(lang));
  const { re, words, caseless } = tokenizers.get(lang);
  const out = document.createDocumentFragment();
  let at = 0;
  const span = (cls, s) => {
    const el = document.createElement('span');
    el.className = cls;
    el.textContent = s;
    out.append(el);
  };
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[0] === '') { re.lastIndex++; continue; }
    const kind = Object.keys(m.groups).find((k) => m.groups[k] !== undefined).replace(/\d+$/, '');
    if (kind === 'word' && !words.has(caseless ? m[0].toLowerCase() : m[0])) continue;
    if (m.index > at) out.append(text.slice(at, m.index));
    const cls = { com: 'hl-com', line: 'hl-com', key: 'hl-key', str: 'hl-str', num: 'hl-num', word: 'hl-kw' }[kind];
    span(cls, m[0]);
    at = m.index + m[0].length;
  }
  if (at < text.length) out.append(text.slice(at));
  return out;
}

/** The family of a block's `language-…` class, or null. */
function languageOf(code) {
  const cls = [...code.classList].find((c) => c.startsWith('language-'));
  if (!cls) return null;
  const name = cls.slice('language-'.length).toLowerCase();
  const lang = ALIASES[name] || name;
  return Object.hasOwn(KEYWORDS, lang) ? lang : null;
}

/** Highlights every fenced block under `root` not highlighted yet. */
export function highlightAll(root) {
  for (const code of root.querySelectorAll('pre > code[class*="language-"]')) {
    if (code.dataset.hl) continue;
    const lang = languageOf(code);
    const text = code.textContent;
    if (!lang || text.length > MAX_CHARS) continue;
    code.replaceChildren(highlightText(text, lang));
    code.dataset.hl = lang;
  }
}
