package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// The console: one page at the admin listener's "/" that polls the admin
// API every second and draws the topology, the lag history, the traffic
// split and the query digests. Its assets (console/) are plain files with no
// build step, embedded so that the binary needs nothing else; the page
// fetches nothing from anywhere but the admin listener itself.
//
// The page and its assets are served without admin.token: they are static
// and hold no data. Every number on the page comes from the API endpoints,
// which keep requiring the token; the page asks for it when one answers 401
// and sends it as a bearer token.

//go:embed console/index.html console/app.js console/style.css
var consoleFiles embed.FS

// consoleCSP lets the page load scripts, styles, images and API answers from
// the admin listener only: no inline script or style, no framing.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// consoleTypes are the content types of the console's files, by extension.
// They are fixed here rather than taken from mime.TypeByExtension, which
// the host's /etc/mime.types can change.
var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// consoleAsset is one embedded file, read once.
type consoleAsset struct {
	body        []byte
	contentType string
	etag        string
}

// consoleAssets holds the files by URL path: "/" for the page,
// "/console/<name>" for the others.
var consoleAssets = loadConsoleAssets()

func loadConsoleAssets() map[string]consoleAsset {
	out := make(map[string]consoleAsset)
	err := fs.WalkDir(consoleFiles, "console", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := consoleFiles.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := consoleAsset{body: body, contentType: consoleTypes[path.Ext(name)], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
		url := "/" + name
		if name == "console/index.html" {
			url = "/"
		}
		out[url] = a
		return nil
	})
	if err != nil {
		panic("console: read embedded files: " + err.Error()) // the build embedded them; cannot happen
	}
	return out
}

// registerConsole adds the console's routes to mux: GET / for the page and
// GET /console/{file} for its script and style sheet. Neither requires the
// admin token (see above).
func registerConsole(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", serveConsole)
	mux.HandleFunc("GET /console/{file}", serveConsole)
}

func serveConsole(w http.ResponseWriter, r *http.Request) {
	a, ok := consoleAssets[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // revalidate: a new binary may serve a new page
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
