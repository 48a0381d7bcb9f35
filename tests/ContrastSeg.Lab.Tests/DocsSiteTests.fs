/// The docs site's own parts (eng/site.sh runs fsdocs between them): the staged input, notebooks as pages, the link check.
module ContrastSeg.Lab.Tests.DocsSiteTests

open System
open System.IO
open Expecto
open ContrastSeg.Lab

let private repo = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "..", ".."))

let tests =
    testList "docs site" [
        test "a notebook page shows code as HTML (fsdocs type-checks fenced F#) and each output: HTML without blank lines, PNG, text" {
            let ipynb =
                """{"cells":[{"cell_type":"markdown","metadata":{},"source":["# Title\n","text"]},
                   {"cell_type":"code","metadata":{},"source":["#load \"formatters.fsx\"\n","\n","let x = 1 < 2"],
                    "outputs":[{"output_type":"display_data","data":{"text/html":["<table>\n","\n","<tr><td>1</td></tr>\n","</table>"],"text/plain":["ignored"]}},
                               {"output_type":"display_data","data":{"image/png":"iVBORw0KGgo="}},
                               {"output_type":"stream","name":"stdout","text":["done\n"]}]}]}"""
            let page = DocsSite.notebookPage ipynb
            Expect.stringContains page "# Title" "markdown kept"
            Expect.isFalse (page.Contains "```fsharp") "no fenced F#"
            Expect.stringContains page "<pre class=\"notebook-code\"><code class=\"language-fsharp\">#load &quot;formatters.fsx&quot;\n&nbsp;\nlet x = 1 &lt; 2</code></pre>" "code escaped, blank line kept visible"
            Expect.stringContains page "<div class=\"notebook-output\">\n<table>\n<tr><td>1</td></tr>\n</table>\n</div>" "HTML output without its blank line"
            Expect.isFalse (page.Contains "ignored") "HTML preferred over text"
            Expect.stringContains page "<img src=\"data:image/png;base64,iVBORw0KGgo=\"/>" "PNG output"
            Expect.stringContains page "```text\ndone\n```" "stream output"
        }

        test "the link check names links to missing files and nothing else" {
            let site = Directory.CreateTempSubdirectory("contrastseg-site-").FullName
            Directory.CreateDirectory(Path.Combine(site, "sub")) |> ignore
            File.WriteAllText(Path.Combine(site, "b.html"), "")
            File.WriteAllText(Path.Combine(site, "sub", "c.html"), """<a href="../b.html">b</a> <a href="/b.html#x">root</a> <a href="../missing.html">m</a>""")
            File.WriteAllText(Path.Combine(site, "a.html"),
                """<a href="b.html">b</a> <a href="sub/c.html?q=1">c</a> <img src="gone.png"> <a href="https://example.org/x">e</a> <a href="#top">t</a> <a href="mailto:a@b">m</a> <img src="data:image/png;base64,AA=="/>""")
            Expect.equal (DocsSite.brokenLinks site "/") [ "a.html", "gone.png"; Path.Combine("sub", "c.html"), "../missing.html" ] "the two broken links"
        }

        test "the staged input: the README as index.md with links relative to docs/, linked repository files copied, every notebook a page" {
            let staging = Path.Combine(Directory.CreateTempSubdirectory("contrastseg-site-input-").FullName, "input")
            DocsSite.stage repo staging None
            let home = File.ReadAllText(Path.Combine(staging, "index.md"))
            Expect.stringContains home "](getting-started.md)" "docs/getting-started.md from the README"
            Expect.isFalse (home.Contains "](docs/") "no link into docs/ left as it was"
            Expect.stringContains home "](repository/LICENSE)" "the licence, outside docs/"
            Expect.isTrue (File.Exists(Path.Combine(staging, "repository", "LICENSE"))) "copied"
            Expect.isTrue (File.Exists(Path.Combine(staging, "reference", "cli.md"))) "docs/ as it is"
            for nb in Directory.GetFiles(Path.Combine(repo, "notebooks"), "*.ipynb") do
                Expect.isTrue (File.Exists(Path.Combine(staging, "notebooks", Path.GetFileNameWithoutExtension nb + ".md"))) (nb + " has a page")
            Directory.Delete(Path.GetDirectoryName staging, true)
        }
    ]
