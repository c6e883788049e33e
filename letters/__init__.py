"""Customer letters: Jinja2 templates rendered to HTML, plain text and PDF (docs/rules.md s.6).

Every letter is rendered only from its stored context (a JSON-able dict), so the same
stored context always gives the same bytes. The API is in `letters.render`.
"""
