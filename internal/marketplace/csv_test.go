package marketplace

import (
	"bytes"
	"testing"
)

func TestWriteCSVNeutralisesFormulas(t *testing.T) {
	var buf bytes.Buffer
	rows := [][]string{{"=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain", "-1.50", "42", "", "a=b"}}
	if err := WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	want := "'=1+2,'+cmd,'-2+3,'@SUM(A1),'\tx,\"'\rx\",plain,-1.50,42,,a=b\n"
	if buf.String() != want {
		t.Fatalf("got  %q\nwant %q", buf.String(), want)
	}
}
