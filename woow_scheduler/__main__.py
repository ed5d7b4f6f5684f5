from woow_scheduler.cli import main

main()
