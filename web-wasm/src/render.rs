//! Markdown → HTML that is safe by construction.
//!
//! pulldown-cmark parses (CommonMark with GFM tables, task lists, footnotes, strikethrough, alert
//! blockquotes, and `[[WikiLinks]]`); this module writes the HTML itself instead of using an HTML
//! sanitizer afterwards. The writer only ever emits a fixed set of tags and attributes, every piece
//! of page text goes through [`crate::html::escape_into`], raw HTML in the page is shown as escaped
//! text (HTML comments are dropped), and every URL goes through [`crate::links`]. So no `<script>`,
//! no event-handler attribute and no `javascript:` URL can appear in the output, whatever the page
//! says. The app shows this HTML inside a CSP that forbids inline script as a second line.
//!
//! Tags emitted: `p h1-h6 a span strong em del sup ol ul li input(checkbox, disabled) blockquote
//! pre code table thead tbody tr th td hr br img(data: raster only) section div dl dt dd sub`.
//! Attributes emitted: `id class href title rel target start alt src type disabled checked
//! loading`; `id`s are always `zk-` + a slug, so page content cannot clobber the app's elements.

use std::collections::BTreeMap;

use pulldown_cmark::{
    Alignment, BlockQuoteKind, CodeBlockKind, Event, HeadingLevel, LinkType, Options, Parser, Tag,
    TagEnd,
};

use crate::frontmatter::{self, Field};
use crate::html::{encode_path_into, escape_into, slug};
use crate::links::{self, PageIndex, Target};

/// What the renderer needs to know about the wiki around the page.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The pages that exist, for `[[links]]` and relative links.
    pub pages: &'a PageIndex,
    /// The path of the page being rendered (relative links start from its folder).
    pub current: &'a str,
    /// The route prefix a page path is appended to, e.g. `#/w/<wiki>/p/`.
    pub route: &'a str,
}

/// A rendered page.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The HTML of the body (front matter table first, when there is front matter).
    pub html: String,
    /// The title: front matter `title`, else the first level-1 heading.
    pub title: Option<String>,
    /// The front matter rows.
    pub front_matter: Vec<Field>,
    /// Paths of the pages this page links to (existing or not), for backlinks.
    pub links: Vec<String>,
    /// Where the first screens of `html` end: a byte offset between two top-level blocks, or
    /// `html.len()` for a short page. The app inserts `html[..fold]` at once and the rest after
    /// the first paint (parsing 280 KB of HTML into the DOM takes Chromium 10+ ms).
    pub fold: usize,
}

/// HTML bytes after which [`Rendered::fold`] is placed (at the next top-level block boundary):
/// several screens of text, about 1 ms of HTML parsing in Chromium.
pub const FOLD_BYTES: usize = 24 * 1024;

/// The parser options zkwiki's markdown dialect uses.
pub fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM
        | Options::ENABLE_WIKILINKS
}

/// Renders a page (front matter included).
pub fn render_page(markdown: &str, ctx: &Context<'_>) -> Rendered {
    let (front, body) = core_crypto::envelope::split_front_matter(markdown);
    let fields = front.map(frontmatter::fields).unwrap_or_default();
    let mut w = Writer::new(ctx, body.len());
    if !fields.is_empty() {
        w.front_matter(&fields);
    }
    for event in Parser::new_ext(body, options()) {
        w.event(event);
    }
    let (html, heading_title, links, fold) = w.finish();
    Rendered {
        fold,
        html,
        title: frontmatter::title(&fields)
            .map(str::to_owned)
            .or(heading_title),
        front_matter: fields,
        links,
    }
}

/// What an open tag turned into, so its end event closes the same thing.
enum Open {
    /// A simple tag: the closing text to write.
    Close(&'static str),
    /// A link written as `<a>`.
    Anchor,
    /// A link that was dropped: its text is wrapped in a span.
    DroppedLink,
    /// A heading being buffered (level, output buffer index).
    Heading(HeadingLevel),
    /// An image: its alt text is being collected.
    Image { src: Option<String>, title: String },
    /// A footnote definition being buffered.
    Footnote(String),
    /// An HTML block being buffered (to drop pure comments).
    HtmlBlock,
    /// A code block.
    Code,
    /// Something not rendered (metadata blocks).
    Skip,
}

struct Writer<'a> {
    ctx: &'a Context<'a>,
    /// Output buffers: index 0 is the document; headings, footnotes and HTML blocks push one.
    bufs: Vec<String>,
    /// Plain text collected for the innermost heading or image alt.
    plain: Vec<String>,
    stack: Vec<Open>,
    ids: BTreeMap<String, u32>,
    title: Option<String>,
    table: Option<(Vec<Alignment>, bool, usize)>,
    /// Footnote label → its number (`u32`, the type of `ids`: one map type in the bundle).
    footnote_numbers: BTreeMap<String, u32>,
    footnotes: Vec<(String, String)>,
    links: Vec<String>,
    /// Open images: text inside them is alt text, not HTML.
    alt_depth: usize,
    fold: Option<usize>,
}

impl<'a> Writer<'a> {
    fn new(ctx: &'a Context<'a>, markdown_len: usize) -> Self {
        Self {
            ctx,
            // The HTML is typically 2-3 times the markdown: fewer reallocations and copies.
            bufs: vec![String::with_capacity(markdown_len * 2 + 256)],
            plain: Vec::new(),
            stack: Vec::new(),
            ids: BTreeMap::new(),
            title: None,
            table: None,
            footnote_numbers: BTreeMap::new(),
            footnotes: Vec::new(),
            links: Vec::new(),
            alt_depth: 0,
            fold: None,
        }
    }

    fn out(&mut self) -> &mut String {
        // bufs always holds at least the document buffer.
        if self.bufs.is_empty() {
            self.bufs.push(String::new());
        }
        let last = self.bufs.len() - 1;
        &mut self.bufs[last]
    }

    fn push(&mut self, s: &str) {
        self.out().push_str(s);
    }

    /// Appends page text, escaped (the only way text reaches the output).
    fn push_escaped(&mut self, s: &str) {
        escape_into(self.out(), s);
    }

    /// Appends ` title="…"` when `title` is not empty.
    fn push_title_attr(&mut self, title: &str) {
        if !title.is_empty() {
            self.push(" title=\"");
            self.push_escaped(title);
            self.push("\"");
        }
    }

    fn text(&mut self, s: &str) {
        if let Some(p) = self.plain.last_mut() {
            p.push_str(s);
        }
        if self.collecting_alt() {
            return;
        }
        let out = self.out();
        escape_into(out, s);
    }

    fn collecting_alt(&self) -> bool {
        self.alt_depth > 0
    }

    /// Appends `zk-SLUG` (with `-N` for the N+1th use of the slug), escaped.
    fn push_unique_id(&mut self, base: &str) {
        let n = match self.ids.get_mut(base) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                self.ids.insert(base.to_owned(), 1);
                1
            }
        };
        self.push("zk-");
        self.push_escaped(base);
        if n > 1 {
            let suffix = format!("-{}", n - 1);
            self.push(&suffix);
        }
    }

    fn front_matter(&mut self, fields: &[Field]) {
        self.push("<table class=\"front-matter\"><tbody>");
        for f in fields {
            self.push("<tr><th>");
            self.push_escaped(&f.key);
            self.push("</th><td>");
            self.push_escaped(&f.value);
            self.push("</td></tr>");
        }
        self.push("</tbody></table>\n");
    }

    /// Appends the in-app route of a page (the route is escaped; the percent-encoded path and
    /// fragment contain only URL-safe ASCII, no HTML metacharacters).
    fn push_page_href(&mut self, path: &str, fragment: Option<&str>) {
        let route = self.ctx.route;
        self.push_escaped(route);
        encode_path_into(self.out(), path);
        if let Some(f) = fragment {
            self.push("?h=");
            encode_path_into(self.out(), f);
        }
    }

    fn open_link(&mut self, target: Target, title: &str) {
        match target {
            Target::Page {
                path,
                exists,
                fragment,
            } => {
                self.push(if exists {
                    "<a class=\"wikilink\" href=\""
                } else {
                    "<a class=\"wikilink missing\" href=\""
                });
                self.push_page_href(&path, fragment.as_deref());
                self.push("\"");
                if exists {
                    self.push_title_attr(title);
                } else {
                    self.push(" title=\"This page does not exist yet\"");
                }
                self.push(">");
                self.links.push(path);
                self.stack.push(Open::Anchor);
            }
            Target::Fragment(f) => {
                self.push("<a class=\"anchor\" href=\"#zk-");
                self.push_escaped(&f);
                self.push("\"");
                self.push_title_attr(title);
                self.push(">");
                self.stack.push(Open::Anchor);
            }
            Target::External(url) => {
                self.push("<a class=\"external\" href=\"");
                self.push_escaped(&url);
                self.push("\" rel=\"noopener noreferrer nofollow\" target=\"_blank\"");
                self.push_title_attr(title);
                self.push(">");
                self.stack.push(Open::Anchor);
            }
            Target::Blocked => {
                self.push("<span class=\"dropped-link\" title=\"Link removed: this kind of URL is not allowed\">");
                self.stack.push(Open::DroppedLink);
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        let simple = |w: &mut Self, open: &str, close: &'static str| {
            w.push(open);
            w.stack.push(Open::Close(close));
        };
        match tag {
            Tag::Paragraph => simple(self, "<p>", "</p>\n"),
            Tag::Heading { level, .. } => {
                self.bufs.push(String::new());
                self.plain.push(String::new());
                self.stack.push(Open::Heading(level));
            }
            Tag::BlockQuote(kind) => match kind {
                None => simple(self, "<blockquote>", "</blockquote>\n"),
                Some(k) => {
                    let (class, label) = match k {
                        BlockQuoteKind::Note => ("note", "Note"),
                        BlockQuoteKind::Tip => ("tip", "Tip"),
                        BlockQuoteKind::Important => ("important", "Important"),
                        BlockQuoteKind::Warning => ("warning", "Warning"),
                        BlockQuoteKind::Caution => ("caution", "Caution"),
                    };
                    let open = format!(
                        "<blockquote class=\"callout callout-{class}\"><p class=\"callout-title\">{label}</p>"
                    );
                    simple(self, &open, "</blockquote>\n");
                }
            },
            Tag::CodeBlock(kind) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
                        .take(32)
                        .collect::<String>(),
                    CodeBlockKind::Indented => String::new(),
                };
                if lang.is_empty() {
                    self.push("<pre><code>");
                } else {
                    // `lang` is only ASCII letters, digits and `-_+` (filtered above).
                    self.push("<pre><code class=\"language-");
                    self.push_escaped(&lang);
                    self.push("\">");
                }
                self.stack.push(Open::Code);
            }
            Tag::HtmlBlock => {
                self.bufs.push(String::new());
                self.stack.push(Open::HtmlBlock);
            }
            Tag::List(Some(1)) => simple(self, "<ol>\n", "</ol>\n"),
            Tag::List(Some(n)) => {
                let open = format!("<ol start=\"{n}\">\n");
                simple(self, &open, "</ol>\n");
            }
            Tag::List(None) => simple(self, "<ul>\n", "</ul>\n"),
            Tag::Item => simple(self, "<li>", "</li>\n"),
            Tag::FootnoteDefinition(label) => {
                self.bufs.push(String::new());
                self.stack.push(Open::Footnote(label.to_string()));
            }
            Tag::DefinitionList => simple(self, "<dl>", "</dl>\n"),
            Tag::DefinitionListTitle => simple(self, "<dt>", "</dt>\n"),
            Tag::DefinitionListDefinition => simple(self, "<dd>", "</dd>\n"),
            Tag::Table(align) => {
                self.table = Some((align, true, 0));
                simple(
                    self,
                    "<div class=\"table-wrap\"><table>",
                    "</tbody></table></div>\n",
                );
            }
            Tag::TableHead => simple(self, "<thead><tr>", "</tr></thead><tbody>\n"),
            Tag::TableRow => {
                if let Some(t) = self.table.as_mut() {
                    t.2 = 0;
                }
                simple(self, "<tr>", "</tr>\n");
            }
            Tag::TableCell => {
                let (head, align) = match self.table.as_mut() {
                    Some((aligns, head, col)) => {
                        let a = aligns.get(*col).copied().unwrap_or(Alignment::None);
                        *col += 1;
                        (*head, a)
                    }
                    None => (false, Alignment::None),
                };
                let class = match align {
                    Alignment::None => "",
                    Alignment::Left => " class=\"align-left\"",
                    Alignment::Center => " class=\"align-center\"",
                    Alignment::Right => " class=\"align-right\"",
                };
                let (open, close) = if head {
                    ("<th", "</th>")
                } else {
                    ("<td", "</td>")
                };
                self.push(open);
                simple(self, class, close);
                self.push(">");
            }
            Tag::Emphasis => simple(self, "<em>", "</em>"),
            Tag::Strong => simple(self, "<strong>", "</strong>"),
            Tag::Strikethrough => simple(self, "<del>", "</del>"),
            Tag::Superscript => simple(self, "<sup>", "</sup>"),
            Tag::Subscript => simple(self, "<sub>", "</sub>"),
            Tag::Link {
                link_type,
                dest_url,
                title,
                ..
            } => {
                let target = match link_type {
                    LinkType::WikiLink { .. } => {
                        links::classify_wikilink(self.ctx.pages, &dest_url)
                    }
                    LinkType::Email => links::classify_url(
                        self.ctx.pages,
                        self.ctx.current,
                        &format!("mailto:{dest_url}"),
                    ),
                    _ => links::classify_url(self.ctx.pages, self.ctx.current, &dest_url),
                };
                self.open_link(target, &title);
            }
            Tag::Image {
                dest_url, title, ..
            } => {
                let src = links::is_inline_image(&dest_url).then(|| dest_url.trim().to_owned());
                self.plain.push(String::new());
                self.alt_depth += 1;
                self.stack.push(Open::Image {
                    src,
                    title: title.to_string(),
                });
            }
            Tag::MetadataBlock(_) => self.stack.push(Open::Skip),
        }
    }

    fn end(&mut self, _tag: TagEnd) {
        let Some(open) = self.stack.pop() else { return };
        match open {
            Open::Close(s) => {
                if s.starts_with("</tr></thead>")
                    && let Some(t) = self.table.as_mut()
                {
                    t.1 = false;
                }
                if s.starts_with("</tbody></table>") {
                    self.table = None;
                }
                self.push(s);
            }
            Open::Anchor => self.push("</a>"),
            Open::DroppedLink => self.push("</span>"),
            Open::Code => self.push("</code></pre>\n"),
            Open::Skip => {}
            Open::Heading(level) => {
                let inner = self.bufs.pop().unwrap_or_default();
                let text = self.plain.pop().unwrap_or_default();
                if level == HeadingLevel::H1 && self.title.is_none() && !text.trim().is_empty() {
                    self.title = Some(text.trim().to_owned());
                }
                let (open, close) = match level {
                    HeadingLevel::H1 => ("<h1 id=\"", "</h1>\n"),
                    HeadingLevel::H2 => ("<h2 id=\"", "</h2>\n"),
                    HeadingLevel::H3 => ("<h3 id=\"", "</h3>\n"),
                    HeadingLevel::H4 => ("<h4 id=\"", "</h4>\n"),
                    HeadingLevel::H5 => ("<h5 id=\"", "</h5>\n"),
                    HeadingLevel::H6 => ("<h6 id=\"", "</h6>\n"),
                };
                self.push(open);
                self.push_unique_id(&slug(&text));
                self.push("\">");
                self.push(&inner);
                self.push(close);
            }
            Open::Image { src, title } => {
                self.alt_depth = self.alt_depth.saturating_sub(1);
                let alt = self.plain.pop().unwrap_or_default();
                if let Some(p) = self.plain.last_mut() {
                    p.push_str(&alt);
                }
                if self.collecting_alt() {
                    return;
                }
                match src {
                    Some(src) => {
                        self.push("<img src=\"");
                        self.push_escaped(&src);
                        self.push("\" alt=\"");
                        self.push_escaped(&alt);
                        self.push("\" loading=\"lazy\"");
                        self.push_title_attr(&title);
                        self.push(">");
                    }
                    None => {
                        self.push("<span class=\"image-blocked\" title=\"Images are not loaded from addresses: that would tell the server or another site which page you read\">[image: ");
                        self.push_escaped(if alt.is_empty() {
                            "no description"
                        } else {
                            &alt
                        });
                        self.push("]</span>");
                    }
                }
            }
            Open::Footnote(label) => {
                let html = self.bufs.pop().unwrap_or_default();
                self.footnotes.push((label, html));
            }
            Open::HtmlBlock => {
                let raw = self.bufs.pop().unwrap_or_default();
                let t = raw.trim();
                let comment_only = t.starts_with("&lt;!--") && t.ends_with("--&gt;");
                if !comment_only && !t.is_empty() {
                    // `raw` was escaped as it was collected.
                    self.push(
                        "<pre class=\"raw-html\" title=\"Raw HTML is shown as text, never run\"><code>",
                    );
                    self.push(&raw);
                    self.push("</code></pre>\n");
                }
            }
        }
    }

    fn footnote_ref(&mut self, label: &str) {
        let next = u32::try_from(self.footnote_numbers.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let n = *self
            .footnote_numbers
            .entry(label.to_owned())
            .or_insert(next);
        self.push("<sup class=\"footnote-ref\"><a class=\"anchor\" href=\"#zk-fn-");
        self.push_escaped(&slug(label));
        let tail = format!("\">{n}</a></sup>");
        self.push(&tail);
    }

    fn event(&mut self, event: Event<'_>) {
        if matches!(self.stack.last(), Some(Open::Skip)) && !matches!(event, Event::End(_)) {
            return;
        }
        self.event_inner(event);
        // Nothing open and no side buffer: the document ends between two top-level blocks.
        if self.fold.is_none()
            && self.stack.is_empty()
            && self.bufs.len() == 1
            && self.bufs[0].len() >= FOLD_BYTES
        {
            self.fold = Some(self.bufs[0].len());
        }
    }

    fn event_inner(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => self.text(&t),
            Event::Code(t) => {
                if let Some(p) = self.plain.last_mut() {
                    p.push_str(&t);
                }
                if !self.collecting_alt() {
                    self.push("<code>");
                    escape_into(self.out(), &t);
                    self.push("</code>");
                }
            }
            Event::InlineMath(t) | Event::DisplayMath(t) => {
                self.push("<code class=\"math\">");
                escape_into(self.out(), &t);
                self.push("</code>");
            }
            Event::Html(t) => self.push_escaped(&t),
            Event::InlineHtml(t) => {
                let trimmed = t.trim();
                let comment = trimmed.starts_with("<!--") && trimmed.ends_with("-->");
                if !comment && !self.collecting_alt() {
                    self.push(
                        "<code class=\"raw-html\" title=\"Raw HTML is shown as text, never run\">",
                    );
                    escape_into(self.out(), &t);
                    self.push("</code>");
                }
            }
            Event::FootnoteReference(label) => self.footnote_ref(&label),
            Event::SoftBreak => self.text("\n"),
            Event::HardBreak => {
                if !self.collecting_alt() {
                    self.push("<br>\n");
                }
            }
            Event::Rule => self.push("<hr>\n"),
            Event::TaskListMarker(checked) => {
                // Mark the item as a task (styling without `:has()`).
                let out = self.out();
                if out.ends_with("<li>") {
                    out.truncate(out.len() - "<li>".len());
                    out.push_str("<li class=\"task\">");
                }
                if checked {
                    self.push("<input type=\"checkbox\" disabled checked> ");
                } else {
                    self.push("<input type=\"checkbox\" disabled> ");
                }
            }
        }
    }

    /// The document, the title, the link targets and the fold.
    fn finish(mut self) -> (String, Option<String>, Vec<String>, usize) {
        // Close anything left open by malformed nesting (pulldown-cmark balances, but be safe).
        while !self.stack.is_empty() {
            self.end(TagEnd::Paragraph);
        }
        while self.bufs.len() > 1 {
            let inner = self.bufs.pop().unwrap_or_default();
            self.push(&inner);
        }
        if !self.footnotes.is_empty() {
            // In the order of their numbers (first reference first), definitions never referenced
            // last, each group in document order: a stable placement by number, without a sort.
            let last = self.footnote_numbers.len();
            let mut by_number: Vec<Vec<(String, String)>> = vec![Vec::new(); last + 1];
            for (label, html) in std::mem::take(&mut self.footnotes) {
                let slot = self
                    .footnote_numbers
                    .get(&label)
                    .map_or(last, |n| (n.saturating_sub(1) as usize).min(last));
                by_number[slot].push((label, html));
            }
            let defs = by_number.into_iter().flatten();
            self.push("<section class=\"footnotes\"><ol>\n");
            for (label, html) in defs {
                self.push("<li id=\"zk-fn-");
                self.push_escaped(&slug(&label));
                self.push("\">");
                self.push(&html);
                self.push("</li>\n");
            }
            self.push("</ol></section>\n");
        }
        let doc = self.bufs.pop().unwrap_or_default();
        let fold = self.fold.filter(|f| *f < doc.len()).unwrap_or(doc.len());
        (doc, self.title, self.links, fold)
    }
}

#[cfg(test)]
mod tests;
