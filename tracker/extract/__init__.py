"""Turning HTML into the stored Markdown-like text: the rules (select/remove, validation) and the
two engines (lxml, BeautifulSoup).
"""
