from newsletter.cli import main

if __name__ == "__main__":  # also imported by parse worker processes, which must not run the CLI
    main()
