//! Renderer tests: the dialect's features, and XSS payloads that must come out inert.

use super::*;

const ROUTE: &str = "#/w/00ff/p/";

fn render(md: &str) -> Rendered {
    let pages = PageIndex::new(["Home.md", "projects/Plan.md", "Other Page.md"]);
    let ctx = Context {
        pages: &pages,
        current: "projects/Plan.md",
        route: ROUTE,
    };
    render_page(md, &ctx)
}

const TAGS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "span",
    "strong",
    "em",
    "del",
    "sup",
    "sub",
    "ol",
    "ul",
    "li",
    "input",
    "blockquote",
    "pre",
    "code",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
    "br",
    "img",
    "section",
    "div",
    "dl",
    "dt",
    "dd",
];
const ATTRS: &[&str] = &[
    "id", "class", "href", "title", "rel", "target", "start", "alt", "src", "type", "disabled",
    "checked", "loading",
];

/// Scans every tag of the output (every `<` in it starts a tag, since text is escaped) and checks
/// tag names, attribute names and URL values against the allowlists.
fn assert_safe(html: &str) {
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after
            .find('>')
            .unwrap_or_else(|| panic!("unclosed tag in {html}"));
        let tag = &after[..end];
        rest = &after[end + 1..];
        let tag = tag.strip_prefix('/').unwrap_or(tag);
        let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        assert!(TAGS.contains(&name), "tag {name:?} in {html}");
        while !attrs.trim().is_empty() {
            attrs = attrs.trim_start();
            let name_end = attrs.find(['=', ' ']).unwrap_or(attrs.len());
            let attr = &attrs[..name_end];
            assert!(ATTRS.contains(&attr), "attribute {attr:?} in {html}");
            attrs = &attrs[name_end..];
            if let Some(v) = attrs.strip_prefix("=\"") {
                let close = v
                    .find('"')
                    .unwrap_or_else(|| panic!("unquoted value in {html}"));
                let value = &v[..close];
                assert!(!value.contains(['<', '>', '\'']), "raw value {value:?}");
                match attr {
                    "href" => assert!(
                        value.starts_with(ROUTE)
                            || value.starts_with("#zk-")
                            || value.starts_with("https://")
                            || value.starts_with("http://")
                            || value.starts_with("mailto:"),
                        "href {value:?} in {html}"
                    ),
                    "src" => assert!(value.starts_with("data:image/"), "src {value:?}"),
                    "id" => assert!(value.starts_with("zk-"), "id {value:?}"),
                    _ => {}
                }
                attrs = &v[close + 1..];
            }
        }
    }
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{html}");
    assert!(
        !lower.contains("javascript:") || !lower.contains("href=\"javascript"),
        "{html}"
    );
}

#[test]
fn dialect_features() {
    let md = "---\ntitle: The Plan\ntags: [a, b]\n---\n# Heading One\n\nSee [[Home]], [[Other Page|the other one]] and [[Missing]].\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo\n\n~~old~~ text[^n].\n\n[^n]: A footnote.\n\n```rust\nfn main() {}\n```\n\n> [!WARNING]\n> careful\n";
    let r = render(md);
    let h = &r.html;
    assert_safe(h);
    assert_eq!(r.title.as_deref(), Some("The Plan"));
    assert!(
        h.starts_with("<table class=\"front-matter\"><tbody><tr><th>title</th><td>The Plan</td>"),
        "{h}"
    );
    assert!(
        h.contains("<h1 id=\"zk-heading-one\">Heading One</h1>"),
        "{h}"
    );
    assert!(
        h.contains("<a class=\"wikilink\" href=\"#/w/00ff/p/Home.md\">Home</a>"),
        "{h}"
    );
    assert!(
        h.contains("<a class=\"wikilink\" href=\"#/w/00ff/p/Other%20Page.md\">the other one</a>"),
        "{h}"
    );
    assert!(h.contains("<a class=\"wikilink missing\" href=\"#/w/00ff/p/Missing.md\" title=\"This page does not exist yet\">Missing</a>"), "{h}");
    assert!(
        h.contains("<th class=\"align-left\">a</th><th class=\"align-right\">b</th>"),
        "{h}"
    );
    assert!(h.contains("<td class=\"align-left\">1</td>"), "{h}");
    assert!(
        h.contains("<input type=\"checkbox\" disabled checked> done"),
        "{h}"
    );
    assert!(h.contains("<del>old</del>"), "{h}");
    assert!(
        h.contains("<sup class=\"footnote-ref\"><a class=\"anchor\" href=\"#zk-fn-n\">1</a></sup>"),
        "{h}"
    );
    assert!(
        h.contains("<section class=\"footnotes\"><ol>\n<li id=\"zk-fn-n\"><p>A footnote.</p>"),
        "{h}"
    );
    assert!(
        h.contains("<pre><code class=\"language-rust\">fn main() {}\n</code></pre>"),
        "{h}"
    );
    assert!(h.contains("callout-warning"), "{h}");
    assert_eq!(r.links, ["Home.md", "Other Page.md", "Missing.md"]);
}

#[test]
fn title_falls_back_to_first_heading_and_ids_are_unique() {
    let r = render("intro\n\n# First\n\n## Same\n\n## Same\n\n# Second\n");
    assert_eq!(r.title.as_deref(), Some("First"));
    assert!(r.html.contains("id=\"zk-same\"") && r.html.contains("id=\"zk-same-1\""));
}

#[test]
fn relative_and_external_links() {
    let r = render(
        "[a](../Home.md) [b](https://example.org/x?y=1&z=2) [c](mailto:a@b.c) [d](#Heading-One) <https://auto.example> <me@example.org>",
    );
    assert_safe(&r.html);
    let h = &r.html;
    assert!(h.contains("href=\"#/w/00ff/p/Home.md\""), "{h}");
    assert!(h.contains("<a class=\"external\" href=\"https://example.org/x?y=1&amp;z=2\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">b</a>"), "{h}");
    assert!(h.contains("href=\"mailto:a@b.c\""), "{h}");
    assert!(h.contains("href=\"#zk-heading-one\""), "{h}");
    assert!(h.contains("href=\"https://auto.example\""), "{h}");
    assert!(h.contains("href=\"mailto:me@example.org\""), "{h}");
}

/// Payloads from XSS cheat sheets, each in the places markdown lets it go.
const PAYLOADS: &[&str] = &[
    "<script>window.zkPwned=1</script>",
    "<img src=x onerror=\"window.zkPwned=1\">",
    "<svg onload=alert(1)>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<!-- x --><script>alert(1)</script>",
    "<style>body{display:none}</style>",
    "<form action=\"https://evil\"><input name=p></form>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<base href=\"https://evil/\">",
    "<object data=\"javascript:alert(1)\"></object>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "\"><script>alert(1)</script>",
    "'><img src=x onerror=alert(1)>",
];

#[test]
fn raw_html_is_shown_as_text() {
    for p in PAYLOADS {
        for md in [
            p.to_string(),
            format!("text {p} text"),
            format!("# {p}"),
            format!("| a |\n|---|\n| {p} |"),
            format!("- {p}"),
            format!("> {p}"),
        ] {
            let r = render(&md);
            assert_safe(&r.html);
        }
    }
    let r = render("<script>window.zkPwned=1</script>");
    assert!(
        r.html
            .contains("&lt;script&gt;window.zkPwned=1&lt;/script&gt;"),
        "{}",
        r.html
    );
    let r = render("a <!-- hidden --> b\n\n<!-- block comment -->\n");
    assert!(
        !r.html.contains("hidden") && !r.html.contains("block comment"),
        "{}",
        r.html
    );
}

#[test]
fn dangerous_urls_lose_their_link() {
    for md in [
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](javascript&#58;alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](&#x6A;avascript:alert(1))",
        "[x](<javascript:alert(1)>)",
        "[x]( javascript:alert(1) )",
        "[x](java%0ascript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x](//evil.example)",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "<javascript:alert(1)>",
        "[x](file:///etc/passwd)",
    ] {
        let r = render(md);
        assert_safe(&r.html);
        assert!(
            !r.html.to_ascii_lowercase().contains("href=\"java"),
            "{md}: {}",
            r.html
        );
        assert!(!r.html.contains("href=\"data:"), "{md}: {}", r.html);
        assert!(!r.html.contains("href=\"//"), "{md}: {}", r.html);
    }
    let r = render("[kept text](javascript:alert(1))");
    assert!(
        r.html.contains("<span class=\"dropped-link\""),
        "{}",
        r.html
    );
    assert!(r.html.contains("kept text"));
}

#[test]
fn wikilink_labels_and_targets_are_escaped() {
    for md in [
        "[[x|<script>alert(1)</script>]]",
        "[[<script>alert(1)</script>]]",
        "[[x|<img src=x onerror=alert(1)>]]",
        "[[javascript:alert(1)]]",
        "[[x\" onmouseover=\"alert(1)]]",
        "[[Home#\"><script>]]",
    ] {
        let r = render(md);
        assert_safe(&r.html);
        assert!(!r.html.contains("<script"), "{}", r.html);
    }
    let r = render("[[javascript:alert(1)]]");
    assert!(
        r.html
            .contains(&format!("href=\"{ROUTE}javascript%3Aalert%281%29.md\"")),
        "{}",
        r.html
    );
}

#[test]
fn images_load_nothing_from_addresses() {
    let r = render(
        "![cat](https://example.org/cat.png) ![x](javascript:alert(1)) ![p](data:image/png;base64,iVBORw0KGgo=) ![s](data:image/svg+xml;base64,PHN2Zz4=) ![\" onerror=\"alert(1)](x.png)",
    );
    assert_safe(&r.html);
    assert!(
        r.html.contains(
            "<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"p\" loading=\"lazy\">"
        ),
        "{}",
        r.html
    );
    assert_eq!(r.html.matches("<img").count(), 1, "{}", r.html);
    assert!(r.html.contains("[image: cat]"));
}

#[test]
fn front_matter_is_text() {
    let r = render(
        "---\ntitle: <script>alert(1)</script>\n\"x\": '<img src=x onerror=alert(1)>'\n---\nbody\n",
    );
    assert_safe(&r.html);
    assert!(
        r.html
            .contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
        "{}",
        r.html
    );
    assert_eq!(r.title.as_deref(), Some("<script>alert(1)</script>"));
}

#[test]
fn code_fence_info_and_titles_cannot_break_out() {
    for md in [
        "```\"><script>alert(1)</script>\nx\n```",
        "```js onload=alert(1)\nx\n```",
        "[a](https://ok.example \"\\\" onmouseover=\\\"alert(1)\")",
        "# Heading \" onclick=\"alert(1)",
    ] {
        assert_safe(&render(md).html);
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn arbitrary_input_stays_inside_the_allowlist() {
    use proptest::prelude::*;
    let alphabet = prop::sample::select(vec![
        "<",
        ">",
        "\"",
        "'",
        "&",
        "&amp;",
        "&quot;",
        "&#39;",
        "&#x22;",
        "&lt;",
        "[",
        "]",
        "(",
        ")",
        "!",
        "|",
        "#",
        "*",
        "_",
        "`",
        "~",
        ":",
        "\n",
        " ",
        "-",
        "=",
        "/",
        "\\",
        "javascript:",
        "data:",
        "http://x",
        "script",
        "onerror",
        "a",
        "1",
        "[[",
        "]]",
        "^",
        "<!--",
        "-->",
        "```",
        "|---|",
        "> ",
        "- [ ] ",
    ]);
    proptest!(ProptestConfig::with_cases(2000), |(parts in prop::collection::vec(alphabet, 0..60))| {
        let r = render(&parts.concat());
        assert_safe(&r.html);
        assert_escaping_complete(&r.html);
        assert_balanced(&r.html);
    });
}

/// The characters HTML gives meaning to never appear raw in attribute values, and every `&` in
/// the output (text and attributes) starts one of the five entities the escaper writes: so page
/// text cannot close a value, open a tag, or smuggle an entity of its own.
fn assert_escaping_complete(html: &str) {
    const ENTITIES: &[&str] = &["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"];
    for (i, _) in html.match_indices('&') {
        assert!(
            ENTITIES.iter().any(|e| html[i..].starts_with(e)),
            "raw & at {i} in {html}"
        );
    }
    assert!(!html.contains('\0'), "NUL in {html}");
}

/// The values of attribute `name` in `html`, unescaped.
fn attr_values(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let v = &html[i + needle.len()..];
            let v = &v[..v.find('"').expect("closing quote")];
            assert!(!v.contains(['<', '>', '\'']), "raw metacharacter in {v:?}");
            v.replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

#[test]
fn attribute_values_escape_quotes_and_entities() {
    // (markdown, attribute, the value the browser must see)
    let cases = [
        (
            r#"[x](https://ok.example/a "say &quot;hi&quot; & <b> 'q'")"#,
            "title",
            r#"say "hi" & <b> 'q'"#,
        ),
        (
            r#"[x](https://ok.example/a 'it&#39;s &#34;x&#x22;')"#,
            "title",
            r#"it's "x""#,
        ),
        (
            "[x](<https://ok.example/?a=1&b=\"2\"&c='3'&d=&lt;>)",
            "href",
            "https://ok.example/?a=1&b=\"2\"&c='3'&d=<",
        ),
        (
            "[x](https://ok.example/?q=&amp;amp;)",
            "href",
            "https://ok.example/?q=&amp;",
        ),
        (
            r#"![a "q" &amp; 'b'](data:image/png;base64,iVBORw0KGgo= "t&#x22;&lt;")"#,
            "alt",
            r#"a "q" & 'b'"#,
        ),
        (
            r#"![a](data:image/png;base64,iVBORw0KGgo= "t&#x22;&lt;")"#,
            "title",
            r#"t"<"#,
        ),
        (
            "[[Home|label]] [[Home#A \"b\" & <c>|x]]",
            "href",
            "#/w/00ff/p/Home.md",
        ),
    ];
    for (md, attr, want) in cases {
        let r = render(md);
        assert_safe(&r.html);
        assert_escaping_complete(&r.html);
        let values = attr_values(&r.html, attr);
        assert_eq!(
            values.first().map(String::as_str),
            Some(want),
            "{md}: {}",
            r.html
        );
    }
    // A fragment with quotes and entities becomes a slug.
    let r = render("[[Home#A \"b\" & <c>|x]]");
    assert_eq!(
        attr_values(&r.html, "href"),
        ["#/w/00ff/p/Home.md?h=a-b-c"],
        "{}",
        r.html
    );
}

#[test]
fn entities_in_text_stay_text() {
    let r = render(
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp;lt; &#60;b&#62; `&amp;` &quot;\n\n---\n\n&#0; &#xD800;",
    );
    assert_safe(&r.html);
    assert_escaping_complete(&r.html);
    let h = &r.html;
    assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{h}");
    // A literal `&amp;lt;` in the markdown is the text `&lt;`, written back escaped.
    assert!(h.contains("&amp;lt;"), "{h}");
    assert!(h.contains("&lt;b&gt;"), "{h}");
    assert!(h.contains("<code>&amp;amp;</code>"), "{h}");
    assert!(!h.contains("<b>") && !h.contains("<script"), "{h}");
    let r = render("---\ntitle: a &amp; \"b\" <i>\n---\nx\n");
    assert!(
        r.html
            .contains("<td>a &amp;amp; &quot;b&quot; &lt;i&gt;</td>"),
        "{}",
        r.html
    );
}

/// Tags of `html` balance (void elements aside): the string is a sequence of whole elements.
fn assert_balanced(html: &str) {
    const VOID: &[&str] = &["input", "hr", "br", "img"];
    let mut open: Vec<&str> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>').expect("closed tag");
        let tag = &after[..end];
        rest = &after[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "unbalanced </{name}> in {html}");
        } else {
            let name = tag.split(' ').next().unwrap_or(tag);
            if !VOID.contains(&name) {
                open.push(name);
            }
        }
    }
    assert!(open.is_empty(), "unclosed {open:?}");
}

#[test]
fn long_pages_fold_between_top_level_blocks() {
    let short = render("# Short\n\ntext\n");
    assert_eq!(short.fold, short.html.len());

    // Every block kind, XSS payloads included, repeated past the fold, with footnotes at the end.
    let mut md = String::from("---\ntitle: Long\n---\n");
    let mut i = 0;
    while md.len() < FOLD_BYTES * 2 {
        i += 1;
        let p = PAYLOADS[i % PAYLOADS.len()];
        md.push_str(&format!(
            "## H{i} {p}\n\ntext [[Home]] [x](https://e.example/?a=\"{i}\") {p} note[^f{i}]\n\n\
             - a\n  - nested {p}\n- [x] b\n\n> quote\n>\n> > deeper\n\n| a | b |\n|---|---|\n| {i} | c |\n\n\
             ```\n{p}\n```\n\n{p}\n\n[^f{i}]: foot {i}\n\n"
        ));
    }
    let r = render(&md);
    assert!(r.fold >= FOLD_BYTES && r.fold < r.html.len(), "{}", r.fold);
    let (head, rest) = r.html.split_at(r.fold);
    for part in [head, rest] {
        assert_safe(part);
        assert_escaping_complete(part);
        assert_balanced(part);
    }
    assert!(head.ends_with('\n'), "{}", &head[head.len() - 40..]);
    assert!(rest.contains("<section class=\"footnotes\">"));
}

#[test]
fn footnotes_are_listed_by_first_reference_and_unreferenced_last() {
    let md = "b[^b] a[^a] b again[^b]\n\n[^unused]: never cited\n\n[^a]: Eh.\n\n[^b]: Bee.\n";
    let h = render(md).html;
    let at = |id: &str| {
        h.find(&format!("<li id=\"zk-fn-{id}\">"))
            .unwrap_or_else(|| panic!("{id}: {h}"))
    };
    assert!(at("b") < at("a") && at("a") < at("unused"), "{h}");
    assert!(h.contains("href=\"#zk-fn-b\">1</a>") && h.contains("href=\"#zk-fn-a\">2</a>"));
    assert_eq!(h.matches("<li id=\"zk-fn-").count(), 3, "{h}");
}
