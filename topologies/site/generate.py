"""Generate the offline demo site served by `topologies/demo.toml` (standard library only).

Writes one directory per made-up sponsor host (`<name>.test/index.html`, a few with more
pages), and `../data/demo-urls.txt`, the URLs the demo fetches (a few of them missing, for
404s). Deterministic: the same run gives the same files. Run from anywhere:
    python3 topologies/site/generate.py
"""
import random
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = """acme-cloud bluebird-data cobalt-labs delta-hosting evergreen-analytics fjord-software
granite-systems harbor-devtools ion-compute juniper-ai kestrel-security lumen-training
marble-consulting nimbus-platforms orchid-research pinnacle-apps quartz-networks redwood-media
summit-education tidal-robotics umbra-games vertex-finance willow-health xenon-energy
yarrow-retail zephyr-logistics anvil-bio beacon-legal cedar-insurance dune-travel
ember-telecom falcon-maps glacier-storage helix-genomics indigo-design jade-foods""".split()
WORDS = """our team builds reliable fast open tools for data services cloud teams developers
customers platform support community conference training products solutions modern secure
scalable engineers partners worldwide pythagoras typhoon""".split()


def page(rng, title, mention):
    words = [rng.choice(WORDS) for _ in range(rng.randint(40, 90))]
    if mention:
        words[rng.randrange(len(words))] = rng.choice(["Python", "python", "PYTHON"])
    return f"<!doctype html>\n<title>{title}</title>\n<h1>{title}</h1>\n<p>{' '.join(words)}</p>\n"


def main():
    rng = random.Random(64)
    for old in HERE.glob("*.test"):
        shutil.rmtree(old)
    urls = []
    for i, name in enumerate(NAMES):
        host = f"{name}.test"
        (HERE / host).mkdir()
        (HERE / host / "index.html").write_text(page(rng, name, rng.random() < 0.4))
        urls.append(f"http://{host}/")
        if i % 6 == 0:
            (HERE / host / "python.html").write_text(page(rng, f"{name} and Python", True))
            urls.append(f"http://{host}/python.html")
    urls += ["http://acme-cloud.test/careers.html", "http://zephyr-logistics.test/old/", "http://nowhere.test/"]
    (HERE.parent / "data" / "demo-urls.txt").write_text("\n".join(urls) + "\n")
    print(f"{len(NAMES)} hosts, {len(urls)} urls")


if __name__ == "__main__":
    main()
