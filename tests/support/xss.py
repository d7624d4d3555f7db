"""The stored-XSS corpus: HTML that would run script if any of it survived, shared by
the sanitizer's tests (tests/core/mail/test_parsing.py: nothing active is left) and the
pages' browser tests (tests/pages: rendered in the real page, nothing runs).

A payload that runs sets ``__xss`` on its window or its parent, or opens a dialog.
"""

from __future__ import annotations

import re

XSS_HTML = (
    '<script>alert(1);parent.__xss=1</script>',
    '<img src=x onerror="alert(2);parent.__xss=1">',
    '<svg onload="alert(3)"><circle r=1 /></svg>',
    '<a href="javascript:alert(4)" id=js>link</a>',
    '<iframe src="javascript:alert(5)"></iframe>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(6)></style></mglyph>',
    '<body onload="alert(7)">',
    '<object data="javascript:alert(8)"></object>',
    '<form action="javascript:alert(9)"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(10)">',
    '<div style="background:url(javascript:alert(11))">styled</div>',
    '<noscript><p title="</noscript><img src=x onerror=alert(12)>">',
    '<details open ontoggle="alert(13)">x</details>',
    '<p onclick="parent.__xss=1">click</p>',
    '<a href=" jav&#x09;ascript:alert(15)">spaced</a>',
    '<img src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxNik8L3NjcmlwdD4=">',
    '<embed src="javascript:alert(17)">',
    '<base href="javascript:alert(18)//">',
    '<svg><animate onbegin="alert(19)" attributeName=x dur=1s></svg>',
    '<template><script>alert(20)</script></template>',
    '<input autofocus onfocus="alert(21)">',
    '<link rel=import href="data:text/html,<script>alert(22)</script>">',
)

# What no sanitized HTML may hold: script, handlers, script URLs, frames, plugins, forms,
# base and meta (redirects), and the foreign-content roots of mutation XSS.
ACTIVE = re.compile(r"<script|\son\w+\s*=|javascript:|data:text/html|<(?:iframe|object|"
                    r"embed|base|meta|form|link|input|svg|math|template)\b", re.IGNORECASE)
