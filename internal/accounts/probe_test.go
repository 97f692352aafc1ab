package accounts

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAccountParam(t *testing.T) {
	for _, tc := range []struct {
		query, want, wantErr string
	}{
		{query: "account=prod", want: "prod"},
		{query: "account=a%2Fb", want: "a/b"},
		{query: "", wantErr: "the account parameter is missing"},
		{query: "account=", wantErr: "the account parameter is missing"},
		{query: "target=prod", wantErr: "the account parameter is missing"},
		{query: "account=a&account=b", wantErr: "given 2 times"},
		{query: "account=a;b", wantErr: "the query string is malformed"},
		{query: "account=%", wantErr: "the query string is malformed"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, err := accountParam(tc.query)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
