#!/usr/bin/env python
"""Django's command-line utility."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config.interrupt import answer_ctrl_c

    answer_ctrl_c()  # every command stops on Ctrl-C, even when started with SIGINT ignored
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
