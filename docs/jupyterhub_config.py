"""JupyterHub for one class of the course on one machine (docs/instructors.md,
"A whole class on JupyterHub"). Copy it to /etc/jupyterhub/jupyterhub_config.py, put
your class's accounts into `allowed_users`, and start the hub as root from that folder:

    cd /etc/jupyterhub && /opt/lr-course/.venv/bin/jupyterhub -f jupyterhub_config.py

tests/test_jupyterhub_class.py runs a class with this file as it stands, with its own
ports, folders and account names put in for the ones below.
"""
c = get_config()  # noqa: F821 (provided by JupyterHub)

# Where the hub answers: http://<this machine>:8000/ (put HTTPS in front of it, e.g. a
# reverse proxy, before learners log in over a network).
c.JupyterHub.bind_url = "http://:8000"

# Who logs in, and how: the machine's Unix accounts with their own passwords (PAM).
# Since JupyterHub 5 nobody may log in unless listed here (or `c.Authenticator.allow_all
# = True`, which lets in every account that can authenticate).
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {"teacher", "ada", "bob"}
c.Authenticator.admin_users = {"teacher"}  # may start and stop others' servers in the hub's admin page

# Each user's Jupyter server runs as that Unix user, from the course's shared environment
# (built by `python3 course.py setup` in /opt/lr-course, readable by every account).
# Its nbgrader configuration (the exchange, the course id) is the environment's own
# /opt/lr-course/.venv/etc/jupyter/nbgrader_config.py.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = ["/opt/lr-course/.venv/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120  # the first start of a server imports a lot
c.Spawner.http_timeout = 120
