"""What readers see: HTML change reports, the static site, the email digest and its mail
transport.
"""
