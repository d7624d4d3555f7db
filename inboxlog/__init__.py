"""The composition root: the `inboxlog` command wires core to its adapters."""
