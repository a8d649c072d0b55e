"""Front doors ("dialects"): other systems' protocols, translated to taskloom's services.

A dialect only translates shapes, names and status codes; every rule lives in the services.
"""
