"""Reason codes and message templates: lookups for decisions, admin management, demo defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from appeals import db, i18n
from appeals.models import Appeal, MessageTemplate, MessageTemplateBody, ReasonCode
from appeals.services import audit, policy
from appeals.services.audit import Actor
from appeals.services.errors import Invalid, NotFound

# `{name}`: a placeholder still waiting for a value. Any braces count, so nothing half-filled slips out.
PLACEHOLDER = re.compile(r"\{[^{}\n]{0,64}\}")
CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
APPLIES_TO = ("approve", "deny", "any")

DEFAULT_REASON_CODES = (
    ("authentic_account", "The account is authentic and was included in error", "approve"),
    ("compromised_verified", "The account was compromised during the period in question; verified", "approve"),
    ("evidence_insufficient", "The evidence provided does not support the appeal", "deny"),
    ("correctly_included", "The account's inclusion is consistent with the platform's findings", "deny"),
    ("duplicate_appeal", "This appeal repeats an earlier one without new information", "deny"),
)

DEFAULT_TEMPLATES = (
    (
        "Approval: included in error",
        "We reviewed your appeal about @{screen_name} and the published data. We found that the account was "
        "included in error. The datasets listed below will be corrected once a second reviewer confirms "
        "this decision: {datasets}.",
    ),
    (
        "Denial: evidence insufficient",
        "We reviewed your appeal about @{screen_name} against the published data for {datasets}. "
        "The information provided does not show that the account was included in error: {explanation}",
    ),
    (
        "Request: compromise dates",
        "To review your appeal about @{screen_name} we need to know when you lost control of the account "
        "and when you regained it, and any evidence of that (for example the platform's security emails). "
        "{question}",
    ),
)


# The owners' languages a template can have a body in besides English (issue 16).
TRANSLATED_LANGUAGES = tuple(code for code in i18n.LANGUAGES if code != i18n.DEFAULT)

# Bodies of the default templates in the owners' languages, keyed by the English template's name.
DEFAULT_TEMPLATE_TRANSLATIONS: dict[str, dict[str, str]] = {
    "Approval: included in error": {
        "ar": "راجعنا طعنك بشأن الحساب @{screen_name} والبيانات المنشورة، ووجدنا أن الحساب أُدرج عن طريق الخطأ. "
              "ستُصحَّح مجموعات البيانات المذكورة أدناه بعد أن يؤكد مراجع ثانٍ هذا القرار: {datasets}.",
        "fa": "درخواست تجدیدنظر شما دربارهٔ حساب @{screen_name} و داده‌های منتشرشده را بررسی کردیم و دریافتیم که "
              "این حساب به اشتباه در آن‌ها گنجانده شده است. مجموعه‌داده‌های زیر پس از تأیید این تصمیم توسط "
              "بازبین دوم اصلاح خواهند شد: {datasets}.",
        "ru": "Мы рассмотрели вашу апелляцию по аккаунту @{screen_name} и опубликованные данные и установили, что "
              "аккаунт был включён по ошибке. Перечисленные ниже наборы данных будут исправлены, как только второй "
              "рецензент подтвердит это решение: {datasets}.",
        "zh_Hans": "我们已审查您关于 @{screen_name} 的申诉以及已发布的数据，确认该账户是被错误收录的。"
                   "在第二位审核员确认这一决定后，以下数据集将被更正：{datasets}。",
        "es": "Hemos revisado su apelación sobre @{screen_name} y los datos publicados, y hemos comprobado que la "
              "cuenta se incluyó por error. Los conjuntos de datos indicados se corregirán en cuanto un segundo "
              "revisor confirme esta decisión: {datasets}.",
        "tr": "@{screen_name} hesabıyla ilgili itirazınızı ve yayımlanan verileri inceledik; hesabın yanlışlıkla "
              "dahil edildiğini tespit ettik. İkinci bir inceleyici bu kararı onayladığında aşağıdaki veri setleri "
              "düzeltilecektir: {datasets}.",
    },
    "Denial: evidence insufficient": {
        "ar": "راجعنا طعنك بشأن الحساب @{screen_name} في ضوء البيانات المنشورة في {datasets}. "
              "المعلومات المقدَّمة لا تُثبت أن الحساب أُدرج عن طريق الخطأ: {explanation}",
        "fa": "درخواست تجدیدنظر شما دربارهٔ حساب @{screen_name} را با داده‌های منتشرشده در {datasets} مقایسه و "
              "بررسی کردیم. اطلاعات ارائه‌شده نشان نمی‌دهد که این حساب به اشتباه گنجانده شده است: {explanation}",
        "ru": "Мы сверили вашу апелляцию по аккаунту @{screen_name} с опубликованными данными {datasets}. "
              "Представленные сведения не показывают, что аккаунт был включён по ошибке: {explanation}",
        "zh_Hans": "我们已对照 {datasets} 中已发布的数据审查了您关于 @{screen_name} 的申诉。"
                   "您提供的信息不能表明该账户是被错误收录的：{explanation}",
        "es": "Hemos revisado su apelación sobre @{screen_name} con los datos publicados de {datasets}. "
              "La información aportada no demuestra que la cuenta se incluyera por error: {explanation}",
        "tr": "@{screen_name} hesabıyla ilgili itirazınızı {datasets} için yayımlanan verilerle karşılaştırarak "
              "inceledik. Sağlanan bilgiler, hesabın yanlışlıkla dahil edildiğini göstermiyor: {explanation}",
    },
    "Request: compromise dates": {
        "ar": "لكي نراجع طعنك بشأن الحساب @{screen_name}، نحتاج إلى معرفة متى فقدت السيطرة على الحساب ومتى "
              "استعدتها، وإلى أي دليل على ذلك (مثل رسائل الأمان التي أرسلتها إليك المنصة). {question}",
        "fa": "برای بررسی درخواست تجدیدنظر شما دربارهٔ حساب @{screen_name} باید بدانیم چه زمانی کنترل حساب را از "
              "دست دادید و چه زمانی آن را بازپس گرفتید، و هر مدرکی در این باره (برای نمونه ایمیل‌های امنیتی "
              "پلتفرم) را ببینیم. {question}",
        "ru": "Чтобы рассмотреть вашу апелляцию по аккаунту @{screen_name}, нам нужно знать, когда вы потеряли "
              "контроль над аккаунтом и когда вернули его, а также любые подтверждения этого (например, письма "
              "платформы о безопасности). {question}",
        "zh_Hans": "为审查您关于 @{screen_name} 的申诉，我们需要了解您何时失去对该账户的控制、何时重新取得控制，"
                   "以及任何相关证据（例如平台发送的安全邮件）。{question}",
        "es": "Para revisar su apelación sobre @{screen_name} necesitamos saber cuándo perdió el control de la "
              "cuenta y cuándo lo recuperó, y cualquier prueba de ello (por ejemplo, los correos de seguridad de "
              "la plataforma). {question}",
        "tr": "@{screen_name} hesabıyla ilgili itirazınızı inceleyebilmemiz için hesabın kontrolünü ne zaman "
              "kaybettiğinizi ve ne zaman geri aldığınızı, ayrıca buna dair her türlü kanıtı (örneğin platformun "
              "güvenlik e-postaları) bilmemiz gerekiyor. {question}",
    },
}


@dataclass(frozen=True)
class TemplateChoice:
    """A template as the owner of one appeal receives it: filled, in their language or English."""

    body: str  # what goes into the reviewer's text box: filled, in `language`
    language: str  # the language of `body`
    wanted: str  # the owner's language
    missing: bool  # True: the template has no body in the owner's language, so English is used
    english: str  # the English body, filled, for the reviewer to read


def placeholders(text: str) -> list[str]:
    """The placeholders still present in `text`, in order, e.g. ['{reason}']."""
    return PLACEHOLDER.findall(text or "")


def require_filled(text: str, field: str) -> None:
    """Refuse text that still contains a template placeholder."""
    left = placeholders(text)
    if left:
        raise Invalid(
            "Fill in every placeholder before sending: " + ", ".join(dict.fromkeys(left)) + ".",
            code="unfilled_placeholders",
            fields={field: "Still contains " + ", ".join(dict.fromkeys(left))},
        )


def fill(body: str, appeal: Appeal) -> str:
    """A template's text with what the appeal already knows filled in; the rest stays for the reviewer."""
    known = {
        "screen_name": appeal.account.screen_name if appeal.account else "",
        "appeal_id": str(appeal.id),
        "datasets": ", ".join(d.dataset for d in appeal.datasets) or i18n.gettext("no published dataset"),
    }
    return PLACEHOLDER.sub(lambda m: known.get(m.group(0)[1:-1].strip(), m.group(0)), body)


def body_in(template: MessageTemplate, language: str | None) -> str | None:
    """The template's body in `language` (English: the template's own body), or None when not translated."""
    code = i18n.normalize(language) or i18n.DEFAULT
    if code == i18n.DEFAULT:
        return template.body
    return next((t.body for t in template.translations if t.language == code), None)


def missing_languages(template: MessageTemplate) -> list[str]:
    """The owners' languages this template has no body in yet."""
    return [code for code in TRANSLATED_LANGUAGES if body_in(template, code) is None]


def choose(template: MessageTemplate, appeal: Appeal) -> TemplateChoice:
    """The template for this appeal's owner: their language when translated, else English with `missing` set."""
    from appeals.services.notify import owner_language

    wanted = owner_language(appeal)
    translated = body_in(template, wanted)
    language = wanted if translated is not None else i18n.DEFAULT
    with i18n.use_locale(language):
        body = fill(translated if translated is not None else template.body, appeal)
    with i18n.use_locale(i18n.DEFAULT):
        english = fill(template.body, appeal)
    return TemplateChoice(body, language, wanted, translated is None, english)


def reason_codes(active_only: bool = True) -> list[ReasonCode]:
    """Reason codes ordered by code."""
    query = select(ReasonCode).order_by(ReasonCode.code)
    if active_only:
        query = query.where(ReasonCode.active.is_(True))
    return list(db.session.scalars(query))


def templates(active_only: bool = True) -> list[MessageTemplate]:
    """Message templates ordered by name."""
    query = select(MessageTemplate).order_by(MessageTemplate.name)
    if active_only:
        query = query.where(MessageTemplate.active.is_(True))
    return list(db.session.scalars(query))


def usable_reason_code(code: str | None, decision: str) -> ReasonCode | None:
    """The active reason code `code` usable for `decision` (approve|deny), or None when not given."""
    if not code:
        return None
    row = db.session.scalar(select(ReasonCode).where(ReasonCode.code == code))
    if row is None or not row.active or row.applies_to not in (decision, "any"):
        raise Invalid(
            f"{code!r} is not an active reason code for a decision to {decision}.",
            code="bad_reason_code",
            fields={"reason_code": "Choose one of the listed reason codes."},
        )
    return row


def listing(principal) -> dict:
    """Active reason codes (with what decision each applies to) and active templates, for any staff member."""
    policy.authorize(principal, "reference.view")
    return {
        "reason_codes": [{"code": r.code, "label": r.label, "applies_to": r.applies_to} for r in reason_codes()],
        "templates": [{"id": t.id, "name": t.name, "body": t.body, "placeholders": placeholders(t.body)}
                      for t in templates()],
    }


def manage_view(principal) -> dict:
    """Every reason code and template, active or not, for the admins' page."""
    policy.authorize(principal, "reference.manage")
    return {"codes": reason_codes(active_only=False), "templates": templates(active_only=False)}


def save_reason_code(principal, actor: Actor, code: str, label: str, applies_to: str, active: bool) -> ReasonCode:
    """Create or update a reason code (admins); codes are never deleted, only deactivated."""
    policy.authorize(principal, "reference.manage")
    code, label = (code or "").strip(), (label or "").strip()
    problems = {}
    if not CODE_PATTERN.match(code):
        problems["code"] = "Lower-case letters, digits and underscores, starting with a letter (2 to 64)."
    if not label or len(label) > 200:
        problems["label"] = "A label of 1 to 200 characters is required."
    if applies_to not in APPLIES_TO:
        problems["applies_to"] = "Choose approve, deny or any."
    if problems:
        raise Invalid("The reason code has problems; see the fields.", fields=problems)
    row = db.session.scalar(select(ReasonCode).where(ReasonCode.code == code))
    before = _code_state(row) if row else None
    if row is None:
        row = ReasonCode(code=code)
        db.session.add(row)
    row.label, row.applies_to, row.active = label, applies_to, bool(active)
    db.session.flush()
    audit.record(actor, "reason_code.save", "reason_code", row.code, before, _code_state(row))
    db.session.commit()
    return row


def save_template(principal, actor: Actor, name: str, body: str, active: bool, template_id: int | None = None,
                  translations: dict[str, str] | None = None) -> MessageTemplate:
    """Create (no id) or update a message template (admins); `translations` maps a language to its body.

    A translation must keep exactly the English body's placeholders; an empty one is removed.
    """
    policy.authorize(principal, "reference.manage")
    name, body = (name or "").strip(), (body or "").strip()
    problems = {}
    wanted_bodies = {}
    for language, text in (translations or {}).items():
        code, text = i18n.normalize(language), (text or "").strip()
        if code is None or code == i18n.DEFAULT:
            problems[f"body_{language}"] = "Not one of the owners' languages."
            continue
        if len(text) > 10000:
            problems[f"body_{code}"] = "A text of at most 10,000 characters is required."
        elif text and sorted(set(placeholders(text))) != sorted(set(placeholders(body))):
            problems[f"body_{code}"] = ("Use exactly the placeholders of the English text: "
                                        + (", ".join(sorted(set(placeholders(body)))) or "none") + ".")
        wanted_bodies[code] = text
    if not name or len(name) > 100:
        problems["name"] = "A name of 1 to 100 characters is required."
    if not body or len(body) > 10000:
        problems["body"] = "A text of 1 to 10,000 characters is required."
    clash = db.session.scalar(select(MessageTemplate).where(MessageTemplate.name == name))
    if clash is not None and clash.id != template_id:
        problems["name"] = "Another template already has this name."
    if problems:
        raise Invalid("The template has problems; see the fields.", fields=problems)
    if template_id is None:
        row, before = MessageTemplate(), None
        db.session.add(row)
    else:
        row = db.session.get(MessageTemplate, template_id)
        if row is None:
            raise NotFound("No such template.")
        before = _template_state(row)
    row.name, row.body, row.active = name, body, bool(active)
    _set_translations(row, wanted_bodies)
    db.session.flush()
    audit.record(actor, "template.save", "template", row.id, before, _template_state(row))
    db.session.commit()
    return row


def seed_defaults() -> dict:
    """Create the default reason codes and templates that are missing; returns how many were added."""
    added = {"reason_codes": 0, "templates": 0}
    existing_codes = set(db.session.scalars(select(ReasonCode.code)))
    for code, label, applies_to in DEFAULT_REASON_CODES:
        if code not in existing_codes:
            db.session.add(ReasonCode(code=code, label=label, applies_to=applies_to, active=True))
            added["reason_codes"] += 1
    existing_names = set(db.session.scalars(select(MessageTemplate.name)))
    for name, body in DEFAULT_TEMPLATES:
        if name not in existing_names:
            row = MessageTemplate(name=name, body=body, active=True)
            _set_translations(row, DEFAULT_TEMPLATE_TRANSLATIONS.get(name, {}))
            db.session.add(row)
            added["templates"] += 1
    # Default templates created before issue 16 get their translations, unless an admin changed the English.
    defaults = dict(DEFAULT_TEMPLATES)
    for row in db.session.scalars(select(MessageTemplate).where(MessageTemplate.name.in_(list(defaults)))):
        if row.body == defaults[row.name]:
            _set_translations(row, {code: text for code, text in DEFAULT_TEMPLATE_TRANSLATIONS.get(row.name, {}).items()
                                    if body_in(row, code) is None})
    db.session.commit()
    return added


def _code_state(row: ReasonCode) -> dict:
    return {"code": row.code, "label": row.label, "applies_to": row.applies_to, "active": row.active}


def _set_translations(row: MessageTemplate, bodies: dict[str, str]) -> None:
    # Only the languages given change; an empty text removes that language's body.
    current = {t.language: t for t in row.translations}
    for code, text in bodies.items():
        if not text:
            if code in current:
                row.translations.remove(current[code])
        elif code in current:
            current[code].body = text
        else:
            row.translations.append(MessageTemplateBody(language=code, body=text))


def _template_state(row: MessageTemplate) -> dict:
    return {"name": row.name, "body": row.body, "active": row.active,
            "translations": {t.language: t.body for t in sorted(row.translations, key=lambda t: t.language)}}
