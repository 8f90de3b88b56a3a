"""The browsable admin view: the API's own URLs as HTML pages, for browsers.

A GET, HEAD or POST whose Accept prefers text/html (a browser's) is answered by a page
(service.ui.pages); every other request gets the API's Collection+JSON, unchanged. Pages are
derived from the same Views as the C+J documents (fields, prompts, links, queries, template),
and their writes go through the API's own handlers (service.api.app: create, update, delete).
"""
