"""Team inboxes and tickets (docs/tickets.md).

``intake`` turns a team inbox's mail into tickets (called by ``core.pipeline``);
``matching`` (which ticket a message continues), ``rules`` (routing) and
``core.mail.auto_replies`` (loops) are pure; ``activity`` writes a ticket's log and its
events; ``access`` says who sees which team inbox; ``service`` and ``inboxes`` are what
the API does with tickets and with team inboxes, teams, rules and capacity.
"""
