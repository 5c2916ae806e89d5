//! The mails the function sends, in the petition's language (French or English; others fall
//! back to English), as plain text and HTML. Links carry the token in the URL fragment.

use crate::mailer::Mail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A new signature: confirm it (or say it was not you).
    Confirm,
    /// Signed again while still pending: the confirm link once more.
    AlreadySignedPending,
    /// Signed again after confirming: nothing to do, erase link only.
    AlreadyConfirmed,
    /// A protected domain (parliament, government): someone used this address.
    Protected,
}

#[derive(Debug, Clone)]
pub struct MailContext<'a> {
    pub to: &'a str,
    pub lang: &'a str,
    pub organization: &'a str,
    pub title: &'a str,
    pub confirm_url: Option<&'a str>,
    pub erase_url: &'a str,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Words {
    subject: String,
    intro: String,
    confirm_label: &'static str,
    erase_intro: &'static str,
    erase_label: &'static str,
    outro: &'static str,
}

fn words(kind: MailKind, fr: bool, title: &str, org: &str) -> Words {
    use MailKind::*;
    let (subject, intro) = match (kind, fr) {
        (Confirm, true) => (
            format!("Confirmez votre signature : {title}"),
            format!("Merci d'avoir signé la pétition « {title} ». Votre signature ne comptera qu'après confirmation : cliquez sur le lien ci-dessous puis sur le bouton « Confirmer »."),
        ),
        (Confirm, false) => (
            format!("Confirm your signature: {title}"),
            format!("Thank you for signing the petition \"{title}\". Your signature counts only once confirmed: open the link below and press \"Confirm\"."),
        ),
        (AlreadySignedPending, true) => (
            format!("Vous avez déjà signé : {title}"),
            format!("Cette adresse a déjà signé la pétition « {title} », mais la signature n'est pas encore confirmée. Voici à nouveau le lien de confirmation."),
        ),
        (AlreadySignedPending, false) => (
            format!("You already signed: {title}"),
            format!("This address already signed the petition \"{title}\", but the signature is not confirmed yet. Here is the confirmation link again."),
        ),
        (AlreadyConfirmed, true) => (
            format!("Vous avez déjà signé : {title}"),
            format!("Cette adresse a déjà signé et confirmé la pétition « {title} ». Votre signature est comptée une seule fois ; vous n'avez rien à faire."),
        ),
        (AlreadyConfirmed, false) => (
            format!("You already signed: {title}"),
            format!("This address already signed and confirmed the petition \"{title}\". Your signature counts once; there is nothing to do."),
        ),
        (Protected, true) => (
            format!("Quelqu'un a utilisé votre adresse : {title}"),
            format!("Quelqu'un a utilisé votre adresse e-mail pour signer la pétition « {title} ». Comme elle appartient à un domaine protégé, cette signature est mise de côté et ne sera ni comptée ni publiée sans vérification par {org}. Si c'est bien vous, vous pouvez la confirmer ci-dessous."),
        ),
        (Protected, false) => (
            format!("Someone used your address: {title}"),
            format!("Someone used your e-mail address to sign the petition \"{title}\". Because it belongs to a protected domain, this signature is held: it will not be counted or shown unless {org} reviews it. If it was you, you may confirm it below."),
        ),
    };
    if fr {
        Words {
            subject,
            intro,
            confirm_label: "Confirmer ma signature",
            erase_intro: "Ce n'était pas vous, ou vous changez d'avis ? Ce lien supprime la signature et vos données :",
            erase_label: "Ce n'était pas moi / supprimer ma signature",
            outro: "Sans confirmation, la signature et vos données sont supprimées au bout de 7 jours.",
        }
    } else {
        Words {
            subject,
            intro,
            confirm_label: "Confirm my signature",
            erase_intro:
                "Not you, or changed your mind? This link deletes the signature and your data:",
            erase_label: "This was not me / delete my signature",
            outro: "Without confirmation, the signature and your data are deleted after 7 days.",
        }
    }
}

/// Renders one mail.
pub fn render(kind: MailKind, ctx: &MailContext<'_>) -> Mail {
    let fr = ctx.lang == "fr";
    let w = words(kind, fr, ctx.title, ctx.organization);
    let confirm = if kind == MailKind::AlreadyConfirmed {
        None
    } else {
        ctx.confirm_url
    };
    let mut text = format!("{}\n\n", w.intro);
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n<p>{}</p>\n",
        if fr { "fr" } else { "en" },
        escape(&w.subject),
        escape(&w.intro)
    );
    if let Some(url) = confirm {
        text.push_str(&format!("{}:\n{url}\n\n", w.confirm_label));
        html.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            escape(url),
            w.confirm_label
        ));
    }
    text.push_str(&format!("{}\n{}\n\n", w.erase_intro, ctx.erase_url));
    html.push_str(&format!(
        "<p>{}<br><a href=\"{}\">{}</a></p>\n",
        escape(w.erase_intro),
        escape(ctx.erase_url),
        w.erase_label
    ));
    if confirm.is_some() {
        text.push_str(&format!("{}\n\n", w.outro));
        html.push_str(&format!("<p>{}</p>\n", escape(w.outro)));
    }
    text.push_str(&format!("-- \n{}\n", ctx.organization));
    html.push_str(&format!(
        "<p>— {}</p>\n</body></html>\n",
        escape(ctx.organization)
    ));
    Mail {
        to: ctx.to.to_string(),
        subject: w.subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_and_english_with_links() {
        let ctx = MailContext {
            to: "a@b.org",
            lang: "fr",
            organization: "Collectif <X>",
            title: "Noël",
            confirm_url: Some("https://s.example/p/confirm/#t=abc"),
            erase_url: "https://s.example/p/erase/#t=def",
        };
        let m = render(MailKind::Confirm, &ctx);
        assert!(m.subject.starts_with("Confirmez"));
        assert!(m.text.contains("#t=abc") && m.text.contains("#t=def"));
        assert!(m.html.contains("Collectif &lt;X&gt;"));
        let en = render(
            MailKind::Protected,
            &MailContext {
                lang: "en",
                ..ctx.clone()
            },
        );
        assert!(en.subject.starts_with("Someone used your address"));
        let done = render(MailKind::AlreadyConfirmed, &ctx);
        assert!(!done.text.contains("#t=abc") && done.text.contains("#t=def"));
    }
}
