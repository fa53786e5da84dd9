"""The site and URL list for the `procnet-serve` run of benches/fetch.sh (standard library).

    serve_site.py pages CORPUS SITE_DIR PAGES   # SITE_DIR/bench.test/page/<id>.html = the doc's body
    serve_site.py urls CORPUS OUT_JSONL PAGES   # {"url": "http://bench.test/page/<id>.html", "site": ...}
"""
import json
import os
import sys


def docs(corpus, pages):
    with open(corpus) as f:
        for _, line in zip(range(pages), f):
            yield json.loads(line)


def main():
    what, corpus, out, pages = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if what == "pages":
        os.makedirs(f"{out}/bench.test/page")
        for doc in docs(corpus, pages):
            with open(f"{out}/bench.test/page/{doc['id']}.html", "w") as page:
                page.write(doc["body"])
        open(f"{out}/.pages-{pages}", "w").close()
    elif what == "urls":
        with open(out, "w") as f:
            for doc in docs(corpus, pages):
                site = doc["url"].split("/")[2]
                f.write(json.dumps({"url": f"http://bench.test/page/{doc['id']}.html", "site": site}) + "\n")
    else:
        sys.exit(f"usage: {sys.argv[0]} pages|urls CORPUS OUT PAGES")


if __name__ == "__main__":
    main()
