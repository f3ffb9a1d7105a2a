"""The producer console (`/console/`): sign-in by challenge, sessions bound to a member
certificate, and the views of a member's own lots. Events are built and signed in the
browser (web/static/console); nothing here ever sees a private key."""
