//! Voting cards: one per member, with their name, their code, and a QR
//! code of the join address with the code filled in (`?code=`), laid out
//! eight to an A4 page for cutting. The HTTP door serves the page and the
//! desktop window prints it; both render it here.

use std::fmt::Write as _;

use crate::core::minutes::{Lang, esc};
use crate::core::roll::Voter;

/// Characters a QR code here may carry (a join address with a code).
pub const MAX_QR: usize = 256;

/// `data` as a QR code, in SVG; `None` when there is nothing to encode or
/// too much.
pub fn qr_svg(data: &str) -> Option<String> {
    if data.is_empty() || data.len() > MAX_QR {
        return None;
    }
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// The join address with a member's code filled in.
pub fn join_with_code(join_url: &str, code: &str) -> String {
    let sep = if join_url.contains('?') { '&' } else { '?' };
    format!("{join_url}{sep}code={code}")
}

const STYLE: &str = "@page{size:A4;margin:10mm}\
body{font-family:system-ui,sans-serif;margin:0;color:#111}\
.cards{display:grid;grid-template-columns:1fr 1fr;gap:0}\
.card{box-sizing:border-box;height:68mm;padding:5mm;border:1px dashed #999;display:grid;\
grid-template-columns:1fr 40mm;gap:4mm;align-items:center;break-inside:avoid}\
.name{font-size:15pt;font-weight:700;margin:0 0 3mm;overflow-wrap:anywhere}\
.code{font:700 19pt ui-monospace,monospace;letter-spacing:.08em;margin:0 0 3mm}\
.weight,.url,.help{font-size:9pt;margin:0 0 1mm;color:#333;overflow-wrap:anywhere}\
.qr svg{width:40mm;height:40mm}\
@media screen{body{padding:1rem;background:#eee}.card{background:#fff}}";

/// The cards of `members`, for participants to open `join_url`.
pub fn render(members: &[Voter], join_url: &str, lang: Lang) -> String {
    let (title, code_word, weight_word, help) = match lang {
        Lang::Fr => (
            "Cartes de vote",
            "Code",
            "Poids",
            "Scannez le QR code, ou ouvrez l'adresse et tapez votre code.",
        ),
        Lang::En => (
            "Voting cards",
            "Code",
            "Weight",
            "Scan the QR code, or open the address and type your code.",
        ),
    };
    let mut html = String::with_capacity(members.len() * 6_000 + 1_000);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main class=\"cards\">",
        lang = if lang == Lang::Fr { "fr" } else { "en" },
    );
    for m in members {
        let url = join_with_code(join_url, &m.code);
        let qr = qr_svg(&url).unwrap_or_default();
        let _ = write!(
            html,
            "<section class=\"card\" data-code=\"{code}\"><div><p class=\"name\">{name}</p>\
             <p class=\"code\" aria-label=\"{code_word}\">{code}</p>",
            code = esc(&m.code),
            name = esc(&m.name),
        );
        if m.weight != 1 {
            let _ = write!(html, "<p class=\"weight\">{weight_word}: {}</p>", m.weight);
        }
        let _ = write!(
            html,
            "<p class=\"url\">{}</p><p class=\"help\">{help}</p></div>\
             <div class=\"qr\">{qr}</div></section>",
            esc(join_url)
        );
    }
    html.push_str("</main></body></html>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(name: &str, code: &str) -> Voter {
        Voter {
            name: name.into(),
            code: code.into(),
            groups: vec![],
            weight: 1,
            present: false,
            proxy_to: None,
            proxies: vec![],
        }
    }

    #[test]
    fn one_card_per_member_with_the_code_in_the_address() {
        let html = render(
            &[voter("Ann <3", "ABCD-EFGH"), voter("Bob", "JKLM-NPQR")],
            "http://192.0.2.1:8765/",
            Lang::En,
        );
        assert_eq!(html.matches("<section class=\"card\"").count(), 2);
        assert!(html.contains("Ann &lt;3"));
        assert!(html.contains("data-code=\"JKLM-NPQR\""));
        assert_eq!(
            join_with_code("http://192.0.2.1:8765/", "ABCD-EFGH"),
            "http://192.0.2.1:8765/?code=ABCD-EFGH"
        );
        assert_eq!(html.matches("<svg").count(), 2);
    }
}
