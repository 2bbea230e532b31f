from facestream.app.cli import main

main()
