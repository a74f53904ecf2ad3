"""What the clients app tells the apps built on it, inside the transaction of the change."""

from django.dispatch import Signal

# A client's assigned staff member changed (`services.client_update`): the workflows keep
# a copy of it with each open step (the stuck report counts by it).
client_reassigned = Signal()  # client=
