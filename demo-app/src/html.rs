//! The admin page. Every link and form action is relative, so the page works whether a
//! proxy in front keeps the app's path prefix or strips it.

use crate::db::Note;

/// Escapes text for use in HTML element content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = "
  body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0;
         background: #f6f7f9; color: #1d2330; }
  main { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
  .meta { color: #5b6475; font-size: .85rem; margin: 0 0 1.5rem; }
  .meta a { color: #3056d3; }
  form { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 1rem;
         display: grid; gap: .5rem; margin-bottom: 1.5rem; }
  label { font-size: .85rem; color: #5b6475; }
  textarea, input[type=text] { font: inherit; padding: .5rem; border: 1px solid #c9ced8;
         border-radius: 6px; width: 100%; box-sizing: border-box; }
  textarea { min-height: 4rem; resize: vertical; }
  button { justify-self: start; font: inherit; padding: .45rem 1rem; border: 0;
         border-radius: 6px; background: #3056d3; color: #fff; cursor: pointer; }
  .error { background: #fdecec; border: 1px solid #f3b4b4; color: #8a1c1c;
         padding: .5rem .75rem; border-radius: 6px; margin-bottom: 1rem; }
  ul { list-style: none; padding: 0; margin: 0; }
  li { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: .75rem 1rem;
       margin-bottom: .5rem; }
  .body { white-space: pre-wrap; word-break: break-word; }
  .by { color: #5b6475; font-size: .8rem; margin-top: .35rem; }
  .empty { color: #5b6475; font-style: italic; }
";

/// `2024-05-01T12:34:56Z` as `2024-05-01 12:34 UTC`; anything else as it is.
fn readable_time(stamp: &str) -> String {
    match (stamp.get(..10), stamp.get(11..16)) {
        (Some(date), Some(time)) if stamp.ends_with('Z') && stamp.len() == 20 => {
            format!("{date} {time} UTC")
        }
        _ => stamp.to_string(),
    }
}

/// What the page says about the app itself.
pub struct PageInfo<'a> {
    pub app: &'a str,
    pub db_dialect: &'a str,
    pub schema_version: i64,
    pub version: &'a str,
}

/// The admin page: the notes (newest first) and a form to add one.
pub fn admin_page(info: &PageInfo<'_>, notes: &[Note], error: Option<&str>) -> String {
    let app = escape(info.app);
    let mut items = String::new();
    for note in notes {
        let author = if note.author.is_empty() {
            "anonymous".to_string()
        } else {
            escape(&note.author)
        };
        items.push_str(&format!(
            "<li><div class=\"body\">{}</div><div class=\"by\">#{} · {} · \
             <time datetime=\"{}\">{}</time></div></li>\n",
            escape(&note.body),
            note.id,
            author,
            escape(&note.created_at),
            escape(&readable_time(&note.created_at))
        ));
    }
    if items.is_empty() {
        items.push_str("<li class=\"empty\">No notes yet. Write the first one above.</li>\n");
    }
    let error = match error {
        Some(message) => format!("<div class=\"error\">{}</div>\n", escape(message)),
        None => String::new(),
    };
    format!(
        "<!doctype html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>{app} · notes</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>{app}</h1>
<p class=\"meta\">hangar-demo {version} · {dialect} database, schema version {schema} ·
<a href=\"../api/info\">info</a> · <a href=\"../api/notes\">notes as JSON</a></p>
{error}<form method=\"post\" action=\"notes\">
<label for=\"body\">Note</label>
<textarea id=\"body\" name=\"body\" required maxlength=\"{max_body}\"></textarea>
<label for=\"author\">Author</label>
<input type=\"text\" id=\"author\" name=\"author\" maxlength=\"{max_author}\">
<button type=\"submit\">Add note</button>
</form>
<ul>
{items}</ul>
</main>
</body>
</html>
",
        version = escape(info.version),
        dialect = escape(info.db_dialect),
        schema = info.schema_version,
        max_body = crate::db::MAX_BODY_CHARS,
        max_author = crate::db::MAX_AUTHOR_CHARS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">Tom & 'Jerry'</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn page_has_only_relative_links() {
        let info = PageInfo {
            app: "<b>demo</b>",
            db_dialect: "sqlite",
            schema_version: 2,
            version: "0.1.0+schema.2",
        };
        let note = Note {
            id: 1,
            body: "<script>alert(1)</script>".into(),
            author: "a&b".into(),
            created_at: "2024-01-01T00:00:00Z".into(),
        };
        let page = admin_page(&info, &[note], Some("<oops>"));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>demo"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("a&amp;b"));
        assert!(page.contains("&lt;oops&gt;"));
        assert!(
            page.contains("<time datetime=\"2024-01-01T00:00:00Z\">2024-01-01 00:00 UTC</time>")
        );
        for attr in ["href=\"", "action=\"", "src=\""] {
            for (i, _) in page.match_indices(attr) {
                let target = &page[i + attr.len()..];
                assert!(!target.starts_with('/'), "absolute link in {target:.40}");
                assert!(!target.contains("://") || target.find("://") > target.find('"'));
            }
        }
    }
}
