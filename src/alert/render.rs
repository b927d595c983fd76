//! Rendering a notification into size-bounded message parts.
//!
//! A template (built-in or a channel's own file) defines four macros: `title()`,
//! `header(part, parts)`, `alert(a, n)` and `footer(omitted)`, evaluated against the
//! [`NotificationView`]. Each alert is rendered once; the packer then fills parts with
//! whole alerts while `measure(title, text)` — the size *after* the channel's JSON
//! encoding — stays within the limit. An alert too big on its own is cut on a UTF-8
//! boundary. Beyond `max_parts`, the last part ends with "…另有 N 条告警".
//!
//! **Invariant:** every alert is either in a part or counted in `omitted`, and every part
//! measures within the limit.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};

use super::view::NotificationView;

/// The built-in templates by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("markdown", include_str!("templates/markdown.j2")),
    ("text", include_str!("templates/text.j2")),
    ("digest", include_str!("templates/digest.j2")),
];

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("template `{name}`: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error(
        "the limit of {limit} bytes leaves no room for any alert (the header and footer alone measure {fixed} bytes)"
    )]
    NoRoom { limit: usize, fixed: usize },
}

/// A template set: the built-ins plus any custom templates, by name.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Templates {
    /// The built-in templates, with times shown in Asia/Shanghai.
    pub fn builtin() -> Self {
        Self::new(chrono_tz::Asia::Shanghai)
    }

    /// The built-in templates, plus two filters for custom templates: `localtime`
    /// (an RFC 3339 time or Unix seconds → `2024-01-02 15:04:05` in `tz`) and `duration`
    /// (seconds → `1小时5分`).
    pub fn new(tz: chrono_tz::Tz) -> Self {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .unwrap_or_else(|error| unreachable!("the default delimiters are valid: {error}"));
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.add_filter("localtime", move |value: Value| {
            super::filters::localtime(&value, tz)
        });
        env.add_filter("duration", super::filters::duration);
        for (name, source) in BUILTIN {
            env.add_template(name, source)
                .unwrap_or_else(|error| unreachable!("built-in template {name} parses: {error}"));
        }
        Self { env }
    }

    /// Adds (or replaces) a template; errors name the template and the line.
    pub fn add(&mut self, name: &str, source: String) -> Result<(), Error> {
        self.env
            .add_template_owned(name.to_owned(), source)
            .map_err(|source| Error::Template {
                name: name.to_owned(),
                source,
            })
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }
}

/// Size bounds for one channel kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Maximum size as measured by the channel (after JSON encoding).
    pub bytes: usize,
    /// Beyond this many parts, the rest is counted as omitted.
    pub max_parts: usize,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub title: String,
    pub text: String,
    /// 1-based.
    pub index: usize,
    pub total: usize,
    /// How many alerts this part shows.
    pub alerts: usize,
    /// Alerts counted as omitted in this part's footer (normally only the last part).
    pub omitted: usize,
}

/// Renders `view` with template `name` into parts that each measure ≤ `limit.bytes`.
/// `suffix` (e.g. `@13800000000` mentions) is appended to every part's text.
pub fn render(
    templates: &Templates,
    name: &str,
    view: &NotificationView,
    suffix: &str,
    limit: Limit,
    measure: &dyn Fn(&str, &str) -> usize,
) -> Result<Vec<Part>, Error> {
    let template_error = |source| Error::Template {
        name: name.to_owned(),
        source,
    };
    let template = templates.env.get_template(name).map_err(template_error)?;
    let mut macros = Macros {
        captured: template
            .render_captured(view.context())
            .map_err(template_error)?,
    };
    let title = macros
        .call("title", &[])
        .map_err(template_error)?
        .trim()
        .to_owned();
    let header_worst = macros.header(99, 99).map_err(template_error)?;
    let footer_worst = macros.footer(view.alert_count).map_err(template_error)?;
    let fixed = Fixed {
        title: &title,
        header: &header_worst,
        footer: &footer_worst,
        suffix,
    };
    // Alerts are rendered one at a time, only while parts have room: the rest of a
    // storm is counted, never rendered.
    let mut blocks = view.alerts.iter().enumerate().map(|(i, alert)| {
        macros
            .call("alert", &[Value::from(Serde(alert)), Value::from(i + 1)])
            .map_err(template_error)
    });
    let plan = pack(&fixed, &mut blocks, view.alert_count, limit, measure)?;
    drop(blocks);
    finish(&mut macros, &title, plan, suffix, limit, measure).map_err(template_error)
}

/// The template's macros, callable after evaluation.
struct Macros<'a> {
    captured: minijinja::Captured<'a>,
}

impl Macros<'_> {
    fn call(&mut self, name: &str, args: &[Value]) -> Result<String, minijinja::Error> {
        self.captured
            .with_state_mut(|state| state.call_macro(name, args))
    }

    fn header(&mut self, part: usize, parts: usize) -> Result<String, minijinja::Error> {
        self.call("header", &[Value::from(part), Value::from(parts)])
    }

    fn footer(&mut self, omitted: usize) -> Result<String, minijinja::Error> {
        self.call("footer", &[Value::from(omitted)])
    }
}

/// Which blocks go into which part, and how many alerts are omitted.
struct Plan {
    parts: Vec<Vec<String>>,
    omitted: usize,
}

/// What every part carries besides its alerts, at its widest (packing measures with the
/// worst-case header and footer, so the real ones always fit).
struct Fixed<'a> {
    title: &'a str,
    header: &'a str,
    footer: &'a str,
    suffix: &'a str,
}

impl Fixed<'_> {
    fn text(&self, blocks: &[String]) -> String {
        let mut text = String::from(self.header);
        blocks.iter().for_each(|b| text.push_str(b));
        text.push_str(self.footer);
        text.push_str(self.suffix);
        text
    }
}

/// Fills parts with whole blocks, in order, until `limit.max_parts` parts are full; the
/// blocks not taken by then are not rendered at all and count as omitted, with the alerts
/// the view did not materialize (`total` is every alert).
fn pack(
    fixed: &Fixed<'_>,
    blocks: &mut dyn Iterator<Item = Result<String, Error>>,
    total: usize,
    limit: Limit,
    measure: &dyn Fn(&str, &str) -> usize,
) -> Result<Plan, Error> {
    let fits = |blocks: &[String]| measure(fixed.title, &fixed.text(blocks)) <= limit.bytes;
    let size = measure(fixed.title, &fixed.text(&[]));
    if size >= limit.bytes {
        return Err(Error::NoRoom {
            limit: limit.bytes,
            fixed: size,
        });
    }
    let mut parts: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut packed = 0;
    for block in blocks {
        current.push(block?);
        if fits(&current) {
            packed += 1;
            continue;
        }
        let block = current.pop().unwrap_or_default();
        if !current.is_empty() {
            parts.push(std::mem::take(&mut current));
            if parts.len() >= limit.max_parts {
                break;
            }
        }
        // Alone in a new part; cut it if even that is too big.
        let alone = vec![block];
        current = if fits(&alone) {
            alone
        } else {
            vec![cut_to_fit(&alone[0], |candidate| {
                fits(&[candidate.to_owned()])
            })]
        };
        packed += 1;
    }
    if !current.is_empty() && parts.len() < limit.max_parts {
        parts.push(current);
    }
    Ok(Plan {
        parts,
        omitted: total.saturating_sub(packed),
    })
}

/// The longest prefix of `block` (on a char boundary, ending in "…") that `fits`.
fn cut_to_fit(block: &str, fits: impl Fn(&str) -> bool) -> String {
    let boundaries: Vec<usize> = block.char_indices().map(|(i, _)| i).collect();
    let (mut lo, mut hi) = (0, boundaries.len());
    let candidate = |n: usize| {
        let end = boundaries.get(n).copied().unwrap_or(block.len());
        format!("{}…\n", block.get(..end).unwrap_or_default())
    };
    // Binary search for the largest n with candidate(n) fitting.
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(&candidate(mid)) {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    candidate(lo)
}

fn finish(
    macros: &mut Macros<'_>,
    title: &str,
    plan: Plan,
    suffix: &str,
    limit: Limit,
    measure: &dyn Fn(&str, &str) -> usize,
) -> Result<Vec<Part>, minijinja::Error> {
    let total = plan.parts.len();
    let mut out = Vec::with_capacity(total);
    for (i, mut blocks) in plan.parts.into_iter().enumerate() {
        let mut omitted = if i + 1 == total { plan.omitted } else { 0 };
        loop {
            let mut text = macros.header(i + 1, total)?;
            blocks.iter().for_each(|b| text.push_str(b));
            text.push_str(&macros.footer(omitted)?);
            text.push_str(suffix);
            // Real numbers are never wider than the worst case packed for, so this fits;
            // the loop only guards custom templates whose header grows in other ways.
            if measure(title, &text) <= limit.bytes || blocks.len() <= 1 {
                out.push(Part {
                    title: title.to_owned(),
                    text,
                    index: i + 1,
                    total,
                    alerts: blocks.len(),
                    omitted,
                });
                break;
            }
            blocks.pop();
            omitted += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
