"""The admin web UI, the POS staff page and the member card: server-rendered, zh-TW first."""
