"""Two-way Google Calendar sync of bookings: confirmed bookings become events in the owner's
calendar and cancelled ones are removed (sync.py, run by the worker), and the owner's own events
make their slots taken for check_slot and book (busy.py). Google's client in client.py."""
