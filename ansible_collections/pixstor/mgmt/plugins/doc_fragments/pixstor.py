# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment(object):

    # Connection options shared by every pixstor.mgmt module.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the PixStor Management REST API, for example V(https://pixstor.example.com)
        or V(http://127.0.0.1:5101).
      - If not set, the value of the E(PIXSTOR_URL) environment variable is used.
    type: str
    required: true
  auth_url:
    description:
      - Base URL of the auth server that answers C(POST /oauth2/token).
      - Defaults to O(url).
    type: str
  username:
    description:
      - User name for the OAuth2 password grant that obtains an access token.
      - If not set, the value of the E(PIXSTOR_USERNAME) environment variable is used.
      - Ignored when O(token) is set, so E(PIXSTOR_TOKEN) with E(PIXSTOR_USERNAME) and no password works.
    type: str
  password:
    description:
      - Password for O(username). Required with O(username) unless O(token) is set.
      - If not set, the value of the E(PIXSTOR_PASSWORD) environment variable is used.
    type: str
  token:
    description:
      - An access token already obtained from C(POST /oauth2/token).
      - When set, no token is requested and O(username)/O(password) are ignored.
      - If not set, the value of the E(PIXSTOR_TOKEN) environment variable is used.
    type: str
  validate_certs:
    description:
      - Whether to verify the server's TLS certificate.
      - Set to V(false) only for servers with self-signed certificates you control; prefer O(ca_path).
      - V(false) wins over the E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE) environment variables.
      - If not set, the value of the E(PIXSTOR_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA certificate(s) that signed the server's certificate, on the host that runs the module.
        A file that does not exist fails the task before any request.
      - When set, it is the only trust used, whatever E(REQUESTS_CA_BUNDLE) or E(CURL_CA_BUNDLE) say.
        When neither O(ca_path) nor E(PIXSTOR_CA_PATH) is set, those variables (or the system's CA
        certificates of C(requests)) are used.
      - Not used with O(validate_certs=false).
      - If not set, the value of the E(PIXSTOR_CA_PATH) environment variable is used.
    type: path
  timeout:
    description:
      - Timeout in seconds of one HTTP request, not of a whole job (modules that wait on jobs have C(wait_timeout)).
      - If not set, the value of the E(PIXSTOR_TIMEOUT) environment variable is used.
    type: int
    default: 30
  token_cache:
    description:
      - Keep the access token obtained with O(username) and O(password) in a file and reuse it in later tasks
        and runs while it has more than 60 seconds left, so that they do not log in again.
        A token the server refuses (HTTP 401) is dropped, and the request is sent again after a fresh login.
      - The file lives on the host that runs the module, in the folder named by the E(PIXSTOR_TOKEN_CACHE_DIR)
        environment variable, by default C(~/.ansible/pixstor/tokens) (created with mode C(0700), files C(0600)).
        It is named after a SHA-256 hash of O(auth_url), O(username) and O(password), so a changed password
        never reuses an old token.
      - Not used with O(token). A cache file that cannot be written only gives a warning.
      - In the same folder, V(pixstor.mgmt.pixstor_space) keeps the hrefs of the profiles, exposers and templates
        it resolved by name (one file per O(url), no secret in it), so that a task that changes nothing sends one
        request. A cached href counts only once the space found on the server refers to it; otherwise the names
        are resolved again. This also happens with O(token), and O(token_cache=false) turns it off.
      - If not set, the value of the E(PIXSTOR_TOKEN_CACHE) environment variable is used.
    type: bool
    default: true
requirements:
  - requests
notes:
  - Authentication needs either O(token), or both O(username) and O(password). When both a token and a
    user name are given (for example from the environment), the token is used.
  - All modules belong to the action group C(pixstor.mgmt.pixstor), so connection options can be set once
    with C(module_defaults) and C(group/pixstor.mgmt.pixstor).
  - Connection errors and HTTP 502, 503 and 504 answers are retried up to three times with a growing pause.
    Creations (C(POST)) are only retried when the request cannot have reached the server.
"""

    # Options of modules that manage one item whose storage work runs as a job.
    STATE = r"""
options:
  state:
    description:
      - V(present) makes sure the item exists; V(absent) makes sure it does not.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - Wait until the job that creates, changes or deletes the item has finished.
      - With V(false) the module returns as soon as the API accepted the request; the item may still be
        V(PENDING) or V(INPROGRESS).
      - When the wait times out, or the job ends V(ERRORED), the task fails with C(changed=true) (the request
        was accepted and its job goes on, or left the item V(ERRORED)), the item (with its C(href)) and C(job)
        in the result.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait for the job when O(wait=true).
    type: int
    default: 300
"""

    # The user's own notes, which every item carries.
    NOTES = r"""
options:
  comment:
    description:
      - Free text about the item, kept by the API.
      - Left as it is when not set; V('') removes it.
      - A change of O(comment) or O(extras) alone answers at once, without a job.
    type: str
  extras:
    description:
      - Your own keys and values (additional metadata and settings), a dictionary kept by the API as a JSON object
        and queryable with C(where) on its top-level keys, C(extras.KEY) in the O(pixstor.mgmt.pixstor_info#module:where)
        of M(pixstor.mgmt.pixstor_info). Keys are 1 to 64 letters, digits, V(_) or V(-), starting with a letter or
        V(_).
      - Compared as a whole, values with their types (V(1) is not V("1")); the order of the keys does not matter.
        A different dictionary replaces the one on the server, keys left out included.
      - Left as they are when not set; V({}) removes them.
    type: dict
"""

    # Attributes every pixstor.mgmt module shares.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check mode, where it predicts C(changed) (and C(actions) for the modules that write) and writes nothing.
    support: full
  diff_mode:
    description: Returns the compared fields before and after the change in C(diff), shown with C(--diff).
    support: full
  action_group:
    description: Belongs to the action group C(pixstor.mgmt.pixstor), so C(module_defaults) can set its options.
    support: full
    membership:
      - pixstor.mgmt.pixstor
  platform:
    description: Where the module can run.
    support: full
    platforms: all
    details: It talks to the PixStor Management REST API over HTTP(S) from wherever the task runs.
"""
