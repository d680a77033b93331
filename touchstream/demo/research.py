"""Customer-initiated touchpoints of the research and attraction stages.

Web sessions (page views whose content is the page's purpose), chats, e-mails to
support, quote requests and public social posts. They make the contact history,
show the journey stage and feed known needs. Each function queues events and
returns the time its episode ended, so callers can chain steps. Pure: no I/O.
"""

from __future__ import annotations

from touchstream.demo.emitter import MINUTE, SECOND, Emitter
from touchstream.demo.personas import AGENTS, CONSUMER_SKUS, Customer

SHOP = "https://shop.example"
PAGES = {
    "specification": (("/products/coffee-machines", "Coffee machines"), ("/products/grinders", "Grinders"),
                      ("/compare", "Compare models"), ("/products/office", "Office machines")),
    "informing": (("/blog/brewing-guide", "Brewing guide"), ("/about", "About us")),
    "promotion": (("/offers/seasonal", "Seasonal offers"), ("/offers/bundle", "Bundle deal")),
    "order_payment": (("/cart", "Cart"), ("/checkout", "Checkout")),
    "fulfilment": (("/account/orders", "Track your order"),),
    "invoicing": (("/account/invoices", "Your invoices"),),
    "inquiry": (("/help", "Help centre"), ("/help/descaling", "How to descale")),
    "complaint": (("/help/complaint", "Report a problem"),),
    "compliment": (("/reviews", "Customer reviews"),),
}
BROWSING = ("specification", "specification", "specification", "informing", "promotion", "inquiry", "compliment")
REFERRERS = ("https://search.example/?q=espresso+machine", "https://social.example/feed", None, None)


def web_session(em: Emitter, c: Customer, t: int, logged_in: bool, purpose: str | None = None,
                referrer: str | None = None, corr: str | None = None, pages: int | None = None) -> int:
    """A visit of a few page views; ``purpose`` fixes the content of the first page (landing)."""
    rng = em.rng
    session = em.new_id("WS")
    ids = c.web_ids(logged_in)
    count = pages or rng.randint(1, 4)
    if referrer is None and purpose is None:
        referrer = rng.choice(REFERRERS)
    for n in range(count):
        content = purpose if (n == 0 and purpose) else rng.choice(BROWSING)
        path, title = rng.choice(PAGES[content])
        duration = rng.randint(5, 240)
        fields = {"url": SHOP + path, "title": title, "session_id": session, "duration_seconds": duration}
        if n == 0 and referrer:
            fields["referrer"] = referrer
        em.emit(t, "web.page_viewed", "web", content, "customer", "web-shop", dict(ids), fields, corr)
        t += duration * SECOND + rng.randint(1, 20) * SECOND
    return t


def chat(em: Emitter, c: Customer, t: int, content: str = "inquiry", corr: str | None = None,
         opening: str = "Hi, how do I descale my machine?", closing: str = "Thanks, that helps!") -> int:
    """Customer, bot, then an agent: the agent's response_seconds gives time to first response."""
    rng = em.rng
    conv, agent = em.new_id("CHAT"), rng.choice(AGENTS)
    ids = c.web_ids(True)
    em.emit(t, "web.chat_message_sent", "web", content, "customer", "web-chat", dict(ids),
            {"conversation_id": conv, "sender": "customer", "text": opening}, corr)
    t += 2 * SECOND
    em.emit(t, "web.chat_message_sent", "web", content, "customer", "web-chat", dict(ids),
            {"conversation_id": conv, "sender": "bot", "text": "An agent will be with you shortly.",
             "response_seconds": 2}, corr)
    wait = rng.randint(20, 600)
    t += wait * SECOND
    em.emit(t, "web.chat_message_sent", "web", content, "customer", "web-chat", dict(ids),
            {"conversation_id": conv, "sender": "agent", "agent_id": agent, "response_seconds": wait,
             "text": "Let me look into that for you."}, corr)
    t += rng.randint(30, 180) * SECOND
    em.emit(t, "web.chat_message_sent", "web", content, "customer", "web-chat", dict(ids),
            {"conversation_id": conv, "sender": "customer", "text": closing,
             "response_seconds": rng.randint(10, 120)}, corr)
    return t


def email_inquiry(em: Emitter, c: Customer, t: int) -> int:
    """An e-mail to support and the agent's personal reply (not contact pressure: initiated by the customer)."""
    rng = em.rng
    msg = em.new_id("MSG")
    em.emit(t, "email.received", "email", "inquiry", "customer", "helpdesk", c.email_ids(),
            {"message_id": msg, "mailbox": "support@shop.example", "subject": "Question about my machine",
             "body_excerpt": "Hello, which beans do you recommend for a lighter roast?",
             "attachment_count": 0})
    t += rng.randint(20 * MINUTE, 26 * 60 * MINUTE)
    em.emit(t, "email.sent", "email", "inquiry", "customer", "helpdesk", c.email_ids(True),
            {"message_id": em.new_id("MSG"), "subject": "Re: Question about my machine",
             "in_reply_to": msg, "agent_id": rng.choice(AGENTS)})
    return t


def quote_request(em: Emitter, c: Customer, t: int) -> int:
    """A web form stating a need: the form answers and the requirement it becomes."""
    rng = em.rng
    sku, category, price = rng.choice(CONSUMER_SKUS)
    qty = rng.randint(1, 3)
    t = web_session(em, c, t, True, "specification", pages=2)
    answers = {"product_category": category, "quantity": str(qty), "usage": rng.choice(("home", "small office"))}
    em.emit(t, "web.form_submitted", "web", "specification", "customer", "web-shop", c.web_ids(True),
            {"form_id": "quote-request-v2", "form_kind": "quote_request", "answers": answers,
             "page_url": SHOP + "/quote"})
    em.emit(t + SECOND, "commerce.requirement_specified", "web", "specification", "customer", "web-shop",
            c.web_ids(True), {"requirement_id": em.new_id("REQ"), "product_category": category,
                              "description": f"Looking for {category} for {answers['usage']} use",
                              "quantity": qty, "budget": em.money(price * qty + 5000)})
    return t + SECOND


def social_post(em: Emitter, c: Customer, t: int) -> int:
    """A public comment or review, answered by the social desk (social-listener matched the handle)."""
    rng = em.rng
    ids = c.crm_ids()
    agent = rng.choice(AGENTS)
    if rng.random() < 0.5:
        content = rng.choice(("inquiry", "compliment", "compliment", "specification"))
        comment = em.new_id("SC")
        text = {"inquiry": "Do you ship to Belgium?", "compliment": "Love my new grinder!",
                "specification": "Any machine with a bigger water tank?"}[content]
        sentiment = 0.7 if content == "compliment" else 0.1
        platform = rng.choice(("instagram", "facebook", "x"))
        em.emit(t, "social.comment_posted", "social", content, "customer", "social-listener", ids,
                {"platform": platform, "comment_id": comment,
                 "post_url": "https://social.example/shop/posts/123", "author_handle": c.handle,
                 "text": text, "sentiment": sentiment})
        t += rng.randint(10 * MINUTE, 6 * 60 * MINUTE)
        em.emit(t, "social.reply_sent", "social", content, "customer", "social-listener", c.crm_ids(),
                {"platform": platform, "reply_id": em.new_id("SR"), "in_reply_to": comment,
                 "visibility": "public", "text": "Thanks for reaching out!", "agent_id": agent})
        return t
    review = em.new_id("RV")
    platform = rng.choice(("google", "trustpilot"))
    em.emit(t, "social.review_posted", "social", "compliment", "customer", "social-listener", ids,
            {"platform": platform, "review_id": review,
             "review_url": f"https://reviews.example/shop/{review}", "about": rng.choice(CONSUMER_SKUS)[0],
             "rating": rng.choice((4, 5, 5)), "text": "Great service and fast delivery.", "author_handle": c.handle})
    t += rng.randint(MINUTE * 30, 24 * 60 * MINUTE)
    em.emit(t, "social.reply_sent", "social", "compliment", "customer", "social-listener", c.crm_ids(),
            {"platform": platform, "reply_id": em.new_id("SR"), "in_reply_to": review,
             "visibility": "public", "text": "Thank you for the kind words!", "agent_id": agent})
    return t
